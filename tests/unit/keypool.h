/* keypool.h: with IMGBUILD_TEST_KEY_POOL set (make check-valgrind), RSA keys come from a
 * fixed pool instead of OpenSSL's key generation. Under valgrind, generating one 2048-bit
 * RSA key (OpenSSL's prime search) takes 20 to 60 s, and check_cluster makes ten: five
 * minutes of checking OpenSSL, not us. The pool stands in for EVP_PKEY_generate() alone,
 * and for RSA alone (a definition in the test program takes the calls of the library
 * linked into it); everything imgbuild does with the key is unchanged and checked. Without
 * the variable the real function runs. Three keys: a test that makes several CAs (rotation,
 * a key that does not belong to a certificate) gets different ones. Test keys, never used
 * anywhere else. */
#pragma once

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>

static const char *const kp_keys[] = {
        "-----BEGIN PRIVATE KEY-----\n"
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCM6UOYaoALspY9\n"
        "EBcnbmpv+EAc6AdzT+9wMD6vwQb3yS3DIaKxSdsuNioyePk+l0bOLzPoD4uy8wMP\n"
        "L10mn5vuMcCTbTyaUDRRNsickOyeNQvmE1BmXUvjkRzQuFS+CnbuxbJdaM08FH9c\n"
        "rTsya77ri2bCigZkLj0IIkC3il5dAmXMZJNI0vSFqBUuG/x+9sqmJPQhKPTwb+qA\n"
        "tDZrUXzZW/xts5q27vrhwkruIrlqGij+zBhthYr//YRTF3wVy7nDS+qxZZ/Q0TYC\n"
        "g7bXNqVfipi9JnEJV6gYljDkeuKFg9XOd0PR1iKLZdzh+IgflYB78ZBdUzV1qO3Q\n"
        "aOdszZ43AgMBAAECggEABlP+yExWxhpgkIsgRxHjL3ZvcVI4QhpKZKLosHLo5wgp\n"
        "XnSBvm1/LYhFhTEVRxV7GretoJPQ0G9aaVGqthkqjbFn9mxMRu/S0aeLWICnp66L\n"
        "2MAa9xCPNRU8vTYx/ruF6NDcYuvZyljEpCWsHWZk/hCrbjwi760l6i9uRu/XWgeN\n"
        "oHZAewOboxwUydbkd1b9K33rcv6R2QtF2Z1WnDvhbnnB3FcPnkXC+CwCX+FIpgBn\n"
        "Grueba2SRTP9fQqXBaV6S4g+j5Rp1zcIHAw09ptkT5hQP64csITi0PZXt9rNrrnQ\n"
        "dzYcdWNdod/fWqI1ptAP9Ff+ZvffBehT8ZJrHpIVnQKBgQDGbxdymLH+lVIlFTDa\n"
        "oWoz/YLJiHtg5/i1/lzmftPuupTXHOTAu/IamV+sg4QVIqeId1WgnJH2QguCSlxU\n"
        "7djJNcBgoOLj2+2RnBEu7DFn0IIrQXN29jVOl7PBjsW8HFOwj3LTv1SqLl5X568b\n"
        "+hgQ36u3dylbamQDhfUAvqVXPQKBgQC1yi7oIItPnKfEWkxOoEKnWKWBe8i+nWzD\n"
        "GHRB4nHmWJqcdPSa3HBZ/VnyFmTIQ7P/qQSf6u4MNzfHdsyDwYOjTF0gdKg+l1K3\n"
        "xoxr3kpTO5BOSVliFAp5HqtCN8jC1FWpRE1QLeQel6sytR3kf1ZfaT+Xm8kK38ql\n"
        "q+I0ncmCgwKBgDIP2OSKbW2DEoRUgkzGKFsRfCuICUh7fZ28nIdyO9mgrOhQW83c\n"
        "HMplI2QMkggbBBVDthCdL53nL6whQoYSs3yf2PcH3/YIiDkSHKuv3w8H5a8wBgdf\n"
        "Ojenwiv07yH0K5EBv8B4Js4AgMDArMbsI6IuK85Pe9maT70r0JHthx0pAoGBAII+\n"
        "SwEQX/8385LgRw+GDnsrLdjpQNggnc3hdVnGzWgFTzCNMrrI+M3gkFK77JT2vL2M\n"
        "8L1KaibiYNpNqRU0zgVvLsGUEv5VGHSGkhCugH3FjQwpzRpR1XcVnAmjQfkkfAL7\n"
        "5pBtcKTicUuxK6uL9+v/0gnjGVTrJZsw3K5p5ffVAoGAeQACBFLNr1yPyb+cnTiS\n"
        "jbMP+V9fgXcb5Ax8T6NzfU/xyWtn/AVBIBS+rj933gxcm0gExIZDhFgegXoq2yvV\n"
        "5A72Hk0zNAumxBARplax2VmYqIzjFTU9LEmScxOgT36ws4tmQVP2yC3rZt946B9k\n"
        "OT0ce2hpLolLkP8crq8O0fs=\n"
        "-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n"
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDUoZxtBsY4h8jr\n"
        "L96ExL0G+Uha1PEICkxzd0JQDzPlLPz6Rk0+MhmEW31VpB6+xqbRIWbZvLgW/aDJ\n"
        "YNVHkcPI6oa92oEH+27I4or/Nw9fFlDDo/NppLknmVsJ12lMxDkufoNUhGwZKmPa\n"
        "rcOTAUBSiflY5KJXU2Eh3IMTvAL/LFleVXMriliC7MhppKicS0aCsonL2hLE4yis\n"
        "XaYmNwj8e0MlbRWqskioBiTLnlfgdqBtM3bjfdvfxqXvArCZ8Bs/3bcCBuPMj6kh\n"
        "ztbk6R+asPKCqLW1nN4CiS+CZqiUSfdSPl9wFAuQjmU6QiVi80QdfvikM6i3lKSg\n"
        "cNN4AFVnAgMBAAECggEABJOH3NbY/E171wf8N4pOcTB7TK0plN034QJPlI6HNOb/\n"
        "eNl7fxuv7efULjwuhzeaToT0BDqqEaCazcq+PGCYQKI/jSV/Qm84Zq1thWmndInz\n"
        "6goEyqDHdWE5EuCmfQb6HhSN+gsxkmcVqBa2T1snCb+7dJzTG6MJQ6PN1GZnABvn\n"
        "s4Sny1yume+yvjeUXgS2bEvwsnuz0eFgxWtjeen/y5xZtHbbkfGCSeyz7ymYBMAC\n"
        "Iaoj2zLDE8WMPGoIp1KVhzdrpL0KBLeoIf2bJFCsiD4GBszijRTai5SN7NMakzv7\n"
        "4Gozmc4UkSQiu1CsvruOwBkGgKUa5JK1Jo2QuWcvFQKBgQDp5PLbnbOkxwj3Ak+3\n"
        "zVDMK07NKOa3fztxO2dUHswwBUH2Qc+RdoS1rfhU2bioXajFpmorGsg5ynV8S6+j\n"
        "Zmmo9nvFXXdhLxi2x/24VqFZHPUZUbmsbQRDHUoZ42KaA8kfaqDEiWM6UA6YIdx8\n"
        "UM+wJGSHt0A3Ak0IrdCgG3cidQKBgQDoujSGq/imAm/9tDo+1X9vLX0lvI9MGial\n"
        "PNgHj4s035pX5zvdiTHMEb2d4GC0+/KhB4f0Jpy3205wVml0OezWU7y3oEMlAeQN\n"
        "jGkwW1A+HLbO9/XHUN8X3g8rJn9PkcNXbIwWf6isXjpPsMeoRVtM46L/pCbM997Y\n"
        "bem/NbZk6wKBgFXipS7xlKKgF3GkXqNueAnQqUn6h+W/iZNFreacvHuxoowLlG2k\n"
        "qIySCksV+5GPesbBGeEkH3vhFQ0EOcV1eLz7bW2Gqax8/8U2YLtMzEiNso6OjPB8\n"
        "w4Dlg21IKs/FLhgkLk6c6FvkQ8enP3BCuFDEvEl9h83rQWA7ew0fqLp1AoGBAIe+\n"
        "ZHjQwf2CmnPutbKEsQnWDJMAQszuy+/BZ3gxf87dRZdUJpT3OvZ+uozlnUKzWjgW\n"
        "vnPoOaz72+qmXGgQiVYSDZdFgSSKz8wfRBOSj2FLOk3KT69sOlQfj9VpZQSyTrAl\n"
        "fih5WZcAdx6YTDyYB8L3W9Gkm4UeZvryUU7YM4T1AoGARGsMLHoO7plvoqEYlOQG\n"
        "zIOib6EkjNkLYVSEbmgPpxTEHP7ZvaEgWbx28s3zEoTMGlKT+NUEinxkBXfIfpBZ\n"
        "pPeAYyLBONMys3H7xHebU48mpcIyTcD1ccswk2BbQ+CGxby6CcxPTJ42T0bdlY/x\n"
        "2wcZXE71PGarHvqLu+XZxTQ=\n"
        "-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n"
        "MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCsjjr5f3SJ4euV\n"
        "cDmPRR5Y3OJxjtcHBTx4bJCWA7+p80oJ/MyRUNwmp6MNbHsHvMEnDP51vhq5OtjY\n"
        "YOIGarTUmPpeNwMNF49mtD/5VoTDQacFhOMvTyJTHUVloNyMgl0KmuGLac8B2u36\n"
        "369BDZIWC9IddI/IxKlIcrIk89eN3pQE7IYFlg9jvu3Dyu5dMbBf5vMyYuNsXDTM\n"
        "oFERO5W34wV/E6CXCy857W8OxVnIuIvJKCtPUw0zjxlwuIswyT/rvKdxCES2ZAny\n"
        "B0xuWYa5JQ8N/7YzESOZ5bxFE4/x9/hbiyTEmF6ldf3VO0cMhwRIguUwDIGIkURa\n"
        "k+22fsrVAgMBAAECggEAGShnesbVY+D3awNAsR2/re8OaMYNna1qwpf5gJWtVQbu\n"
        "jYQ5AxrJ7izUvflJ+rfPZXUkiGAeH1FwGiQN8CeQk8p1/lSA8mCz/KJdDWpK0vj4\n"
        "c/qK8PPVqk6DNqz8WtQK4qfwKFZV4wxbVA9WyuJCoUo56Sd8ayYZFEH8rRyMGdfS\n"
        "zFs9q5suItJYqRtRLKu8e6Dhif6Me3UyPFRHLyLIzXif65qKGxIn94J0W6Q/TJz+\n"
        "pUda7qx74DcCkjl9wbeFlZjdPiI6oztyqK5zeRthRCgXvYNGaoI0CAqi83JJmp/b\n"
        "0X22DaR48GQwanOjws+TXHYqx4Cq0EkPX9QTXY57QQKBgQDyib0YL7yf8gaqKtZk\n"
        "PUzcJZUvyBcl2qSN7Iij1XXOqcqz8AjEH7lfnFI4rPEu7X60e0JxLQ+LdvkGzlZO\n"
        "fPvxbcFgDd+6cRFKXWO/AxgaW/fMSVD/DbbA7vjHk2fHXvrcKcmBykj3WFOSlaIE\n"
        "vTT20xgEgFXSM93obRZqz3JacQKBgQC2IhmXtzrVA3vH8GffZ5ei65gPzaOiFIaa\n"
        "e7cF9VYppMo8R5M91u8iVRGA+B37TcggtS52YB2pUSAjlmfq5mezylqwvArcRP/b\n"
        "JXmQl6CiCpEQkfbebdz01vRFM9kkNL954KRdamUW9Hm2mQ54LU/nkstgfomxNSSJ\n"
        "5/xeErKApQKBgQDJajt/z3zssxh3zrVWb1XZ6NgY4yjeBdHsDsd2jzmTU4wDnE4b\n"
        "WWEflnjtmil82DwF8+q8hDhJkJbD4SzpZ3/vAj+53iuy8Fz0jdPc99vXYBLMMwKx\n"
        "nRjs5kfxrWdcuXLIzWcLgwrPZimZLOxs1Rgb9jgW3ODofKxHbfhU4UvM8QKBgQCs\n"
        "pThTSzm2b93m0ej0qTLhGagD2u8wlXped8UvHbc2NGILr+FP7iyyA6da9FcfP0Tk\n"
        "VDqdtVCIjkED2u/Yh91nXPqIq0c0MyfA6Q4J1OFMmO2XonU7tTKM2DGmY5aCromO\n"
        "kzXa4x6+GrJBN2ay3mju34RvjKMi2ngvTTs5RUn1jQKBgQCzAAxY7Ftxf5Gw8YPK\n"
        "nmxtT7bTsuwABCytAZZ/wRr/wLCkP2PUZfG2imVcgqRz5IwBr30Xg2n5QcQSGUJ3\n"
        "am0LB2RiK9aG2+nSLbmRM+BahEv49usNgvuAIag8W+LaOp8ujYBksE9fArB2ZuPi\n"
        "VxuBdRrkWx2KKwiaruzBRjcq8g==\n"
        "-----END PRIVATE KEY-----\n",
};
static size_t kp_next;

int EVP_PKEY_generate(EVP_PKEY_CTX *ctx, EVP_PKEY **ppkey)
{
	typedef int (*gen_fn)(EVP_PKEY_CTX *, EVP_PKEY **);
	static gen_fn real;
	const char *on = getenv("IMGBUILD_TEST_KEY_POOL");
	if (!on || !*on || !EVP_PKEY_CTX_is_a(ctx, "RSA")) {
		if (!real)
			*(void **)&real = dlsym(RTLD_NEXT, "EVP_PKEY_generate");
		return real ? real(ctx, ppkey) : 0;
	}
	BIO *b = BIO_new_mem_buf(kp_keys[kp_next++ % (sizeof(kp_keys) / sizeof(kp_keys[0]))], -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!k)
		return 0;
	EVP_PKEY_free(*ppkey);
	*ppkey = k;
	return 1;
}
