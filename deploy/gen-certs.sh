#!/usr/bin/env bash
# deploy/gen-certs.sh - a development CA and one certificate per node, with
# openssl (docs/security.md "TLS").
#
#   deploy/gen-certs.sh DIR ID@HOST [ID@HOST ...]
#
# Writes into DIR (mode 0700; keys 0600):
#   ca.pem, ca.key             the CA (kept: a second run reuses it, so
#                              certificates added later chain to the same CA)
#   node<ID>.pem, node<ID>.key the certificate of node ID, signed by the CA
# A node's certificate names it for its peers (CN and DNS
# "lora-node-<ID>") and for clients (DNS and IP HOST, DNS localhost), and
# serves every port of the node (HTTP, native, Bolt, peer: both TLS server
# and client). An existing node certificate is kept; delete it to renew.
# Set LORA_CERT_DAYS (default 825) for another lifetime. These are for
# development and tests: in production use your own CA (docs/security.md).
set -euo pipefail
if [ $# -lt 2 ]; then
	echo "usage: $0 DIR ID@HOST [ID@HOST ...]" >&2
	exit 2
fi
dir=$1
shift
days=${LORA_CERT_DAYS:-825}
mkdir -p "$dir"
chmod 700 "$dir"
umask 077
if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" \
		-subj "/CN=LoraDB development CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
for spec in "$@"; do
	id=${spec%%@*}
	host=${spec#*@}
	case "$id" in '' | *[!0-9]*)
		echo "$0: bad node '$spec' (want ID@HOST)" >&2
		exit 2
		;;
	esac
	[ -s "$dir/node$id.pem" ] && [ -s "$dir/node$id.key" ] && continue
	san="DNS:lora-node-$id,DNS:localhost,DNS:$host"
	if [[ "$host" =~ ^[0-9.]+$ ]]; then san="$san,IP:$host"; fi
	ext=$(mktemp)
	printf '%s\n' "basicConstraints=CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth,clientAuth" \
		"subjectAltName=$san" >"$ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$dir/node$id.key" -out "$dir/node$id.csr" \
		-subj "/CN=lora-node-$id" 2>/dev/null
	openssl x509 -req -in "$dir/node$id.csr" -CA "$dir/ca.pem" \
		-CAkey "$dir/ca.key" -CAcreateserial -days "$days" \
		-extfile "$ext" -out "$dir/node$id.pem" 2>/dev/null
	rm -f "$ext" "$dir/node$id.csr"
done
chmod 600 "$dir"/*.key
echo "certificates in $dir: CA ca.pem; nodes: $(cd "$dir" && ls node*.pem | tr '\n' ' ')"
