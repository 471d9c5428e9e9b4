#!/bin/sh
# Certificates for tests/unit/test_tls.c, made afresh in DIR on every run:
#   ca.pem ca.key            the test CA (trusted by the listeners under test)
#   server.pem server.key    server certificate for localhost and 127.0.0.1
#   server2.pem server2.key  another one (CN localhost-2), for reload
#   other.key                a key that matches neither
#   server-encrypted.key     server.key with the passphrase "secret"
#   client.pem client.key    CN "test client" with Mosquitto's example subject
#   utf8.pem utf8.key        CN "Jörg", O "a,b+c": escaping in the subject form
#   nocn.pem nocn.key        no commonName at all
#   expired.pem expired.key  valid 2020-01-01 to 2021-01-01
#   revoked.pem revoked.key  revoked in crl.pem
#   rogue-ca.pem, rogue.pem rogue.key  a client from a CA nobody trusts
#   crl.pem                  the test CA's CRL, revoking revoked.pem
#   capath/                  ca.pem, with the names "openssl rehash" gives
#   garbage.pem              not PEM at all
# Usage: make_certs.sh DIR   (OPENSSL names the openssl command; default: openssl)
set -eu
dir=$1
ossl=${OPENSSL:-openssl}
cd "$dir"

key() { "$ossl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

mkdir -p ca.db
: > ca.db/index.txt
echo 1000 > ca.db/serial
echo 1000 > ca.db/crlnumber
cat > ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $dir/ca.db
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = any
unique_subject = no
copy_extensions = none
[ any ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[ client ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
CNF

key ca.key
"$ossl" req -config ca.cnf -new -x509 -key ca.key -subj "/O=mqttb tests/CN=mqttb test CA" \
  -extensions v3_ca -days 3650 -out ca.pem

# sign NAME SUBJECT EXTENSIONS [ca options...]
sign() {
  name=$1 subj=$2 ext=$3
  shift 3
  key "$name.key"
  "$ossl" req -config ca.cnf -new -utf8 -key "$name.key" -subj "$subj" -out "$name.csr"
  "$ossl" ca -config ca.cnf -batch -notext -utf8 -extensions "$ext" -in "$name.csr" \
    -out "$name.pem" "$@" 2>/dev/null
}

sign server "/CN=localhost" server
sign server2 "/CN=localhost-2" server
sign client "/C=GB/ST=Nottinghamshire/L=Nottingham/O=Server/OU=Production/CN=test client" client
sign utf8 "/O=a,b\\+c/CN=Jörg" client
sign nocn "/O=mqttb tests/OU=no common name" client
sign expired "/CN=expired client" client -startdate 20200101000000Z -enddate 20210101000000Z
sign revoked "/CN=revoked client" client
"$ossl" ca -config ca.cnf -revoke revoked.pem 2>/dev/null
"$ossl" ca -config ca.cnf -gencrl -out crl.pem 2>/dev/null

key other.key
"$ossl" pkey -in server.key -aes256 -passout pass:secret -out server-encrypted.key

key rogue-ca.key
"$ossl" req -config ca.cnf -new -x509 -key rogue-ca.key -subj "/CN=rogue CA" -extensions v3_ca \
  -days 3650 -out rogue-ca.pem
key rogue.key
"$ossl" req -config ca.cnf -new -key rogue.key -subj "/CN=test client" -out rogue.csr
"$ossl" x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial -days 3650 \
  -out rogue.pem 2>/dev/null

mkdir -p capath
cp ca.pem capath/ca.pem
"$ossl" rehash capath

echo "this is not a certificate" > garbage.pem
