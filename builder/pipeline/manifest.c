/* manifest.c: render the manifest JSON written beside each image. */
#include "manifest.h"

#include "util/json.h"

char *ib_manifest_render(const struct ib_manifest *m)
{
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	const struct ib_project *p = m->project;
	const struct ib_resolved *r = m->role;

	json_init(&j, &sb, 1);
	json_obj_begin(&j, NULL);
	json_int(&j, "manifest_version", 1);
	json_str(&j, "tool", "imgbuild " IMGBUILD_VERSION);
	json_str(&j, "project", p->name);
	json_str(&j, "role", r->role->name);
	json_arr_begin(&j, "extends_chain");
	for (size_t i = 0; i < r->n_chain; i++)
		json_str(&j, NULL, r->chain[i]->name);
	json_arr_end(&j);

	json_obj_begin(&j, "inputs");
	json_str(&j, "digest", m->digest);
	if (r->base_image) {
		/* No root filesystem was bootstrapped: the image it started from is the input. */
		json_obj_begin(&j, "base_image");
		json_str(&j, "url", r->base_image->url);
		json_str(&j, "sha256", r->base_image->sha256);
		json_str(&j, "format", r->base_image->format == IB_FMT_QCOW2 ? "qcow2" : "raw");
		json_obj_end(&j);
	} else {
		json_str(&j, "rootfs_key", m->rootfs_key);
	}
	json_str(&j, "suite", p->suite);
	json_str(&j, "mirror", p->mirror);
	json_str(&j, "architecture", p->arch);
	if (!r->base_image)
		json_str(&j, "variant", p->variant);
	json_int(&j, "source_date_epoch", m->epoch);
	if (!r->base_image) /* the base image brought its disk */
		json_int(&j, "disk_size", (long long)r->disk_size);
	json_arr_begin(&j, "packages_requested");
	for (size_t i = 0; i < r->packages.n; i++)
		json_str(&j, NULL, r->packages.v[i]);
	json_arr_end(&j);
	json_arr_begin(&j, "units_enabled");
	for (size_t i = 0; i < r->units.n; i++)
		json_str(&j, NULL, r->units.v[i]);
	json_arr_end(&j);
	json_arr_begin(&j, "files");
	for (size_t i = 0; i < r->n_files; i++) {
		const char *rel = r->files[i]->source;
		if (startswith(rel, p->root) && rel[strlen(p->root)] == '/')
			rel += strlen(p->root) + 1;
		json_obj_begin(&j, NULL);
		json_str(&j, "destination", r->files[i]->dest);
		json_str(&j, "source", rel);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);

	if (m->layout) {
		const struct ib_disk_layout *l = m->layout;
		json_obj_begin(&j, "disk");
		json_str(&j, "partition_table", "gpt");
		json_str(&j, "disk_guid", l->disk_guid);
		json_str(&j, "root_partition_guid", l->root_part_guid);
		json_str(&j, "root_filesystem_uuid", l->root_fs_uuid);
		json_str(&j, "esp_volume_id", l->esp_vol_id);
		json_str(&j, "kernel", l->kernel);
		json_str(&j, "initrd", l->initrd);
		json_arr_begin(&j, "boot");
		json_str(&j, NULL, "bios");
		json_str(&j, NULL, "uefi");
		json_arr_end(&j);
		json_obj_end(&j);
	}

	json_arr_begin(&j, "artifacts");
	for (size_t i = 0; m->supply && i < m->supply->n_artifacts; i++) {
		const struct ib_supplied_artifact *a = &m->supply->artifacts[i];
		json_obj_begin(&j, NULL);
		json_str(&j, "name", a->spec->name);
		json_str(&j, "url", a->spec->url);
		json_str(&j, "sha256", a->sha256);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_arr_begin(&j, "images");
	for (size_t i = 0; m->supply && i < m->supply->n_images; i++) {
		const struct ib_supplied_image *im = &m->supply->images[i];
		json_obj_begin(&j, NULL);
		json_str(&j, "ref", im->ref);
		json_str(&j, "manifest_digest", im->manifest_digest);
		json_str(&j, "archive", im->file);
		json_obj_end(&j);
	}
	json_arr_end(&j);

	json_arr_begin(&j, "packages");
	for (size_t i = 0; i < m->n_packages; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "name", m->packages[i].name);
		json_str(&j, "version", m->packages[i].version);
		json_obj_end(&j);
	}
	json_arr_end(&j);

	/* The one key the copy inside the image cannot have (manifest.h). */
	if (!m->in_image) {
		json_obj_begin(&j, "outputs");
		for (size_t i = 0; i < m->n_outputs; i++) {
			json_obj_begin(&j, m->outputs[i].format);
			json_str(&j, "file", m->outputs[i].file);
			json_int(&j, "size", m->outputs[i].size);
			json_str(&j, "sha256", m->outputs[i].sha256);
			json_obj_end(&j);
		}
		json_obj_end(&j);
	}
	json_obj_end(&j);
	return sb_take(&sb);
}
