#!/bin/sh
# Alertmanager's entry point on the tooling host: render alertmanager.yml.in with the
# webhook URL from the environment, then exec the command given (the alertmanager binary
# and its flags). With no command, only render. Runs under the image's BusyBox sh and
# awk as well as on a Debian host (the static test renders with it too).
#
#   ALERT_WEBHOOK_URL     webhook URL (http or https); empty: notifications go nowhere
#   ALERTMANAGER_TEMPLATE template, default /etc/alertmanager/alertmanager.yml.in
#   ALERTMANAGER_CONFIG   output, default /alertmanager/alertmanager.yml
set -eu

template=${ALERTMANAGER_TEMPLATE:-/etc/alertmanager/alertmanager.yml.in}
config=${ALERTMANAGER_CONFIG:-/alertmanager/alertmanager.yml}
url=${ALERT_WEBHOOK_URL:-}

if [ -z "$url" ]; then
	receiver=blackhole
	# Never called (no route leads to it) but must parse as a URL.
	url=http://127.0.0.1:9/unset
	echo "render-config: ALERT_WEBHOOK_URL is empty: alerts are not sent anywhere" >&2
else
	receiver=webhook
	case $url in
	http://?* | https://?*) ;;
	*)
		echo "render-config: ALERT_WEBHOOK_URL must be an http:// or https:// URL" >&2
		exit 1
		;;
	esac
	# The URL goes into a single-quoted YAML scalar on one line.
	case $url in
	*"'"* | *[[:space:]]* | *[[:cntrl:]]*)
		echo "render-config: ALERT_WEBHOOK_URL holds a quote, a blank or a control character" >&2
		exit 1
		;;
	esac
fi

umask 077
tmp=$config.tmp
# index/substr rather than sub/gsub: '&' and '\' in the URL must stay literal.
RENDER_URL=$url RENDER_RECEIVER=$receiver awk '
function put(line, key, value,    i) {
	while ((i = index(line, key)) > 0)
		line = substr(line, 1, i - 1) value substr(line, i + length(key))
	return line
}
{
	$0 = put($0, "@ALERT_WEBHOOK_URL@", ENVIRON["RENDER_URL"])
	$0 = put($0, "@ALERT_RECEIVER@", ENVIRON["RENDER_RECEIVER"])
	print
}' "$template" >"$tmp"
mv -f "$tmp" "$config"

[ "$#" -gt 0 ] || exit 0
exec "$@"
