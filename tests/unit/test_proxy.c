/* SPDX-License-Identifier: MIT */
/* The PROXY protocol parser of mqttb (cli/proxy.c): both versions, every
 * address family, TLS information, headers cut at every byte, and every
 * kind of bad header. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "../../cli/proxy.h"

static enum mqttb_cli_proxy_result parse(int v, const void *b, size_t n, size_t *used,
                                         struct mqttb_cli_proxy_info *info, char *why) {
  return mqttb_cli_proxy_parse(v, b, n, used, info, why, 128);
}

/* Every proper prefix of a valid header is MORE, the whole is DONE. */
static void check_prefixes(int v, const uint8_t *b, size_t n) {
  for (size_t k = 0; k < n; k++) {
    size_t used = 0;
    struct mqttb_cli_proxy_info info;
    char why[128] = "";
    cr_assert(eq(int, parse(v, b, k, &used, &info, why), MQTTB_CLI_PROXY_MORE),
              "prefix of %zu bytes: %s", k, why);
  }
}

static void expect_v4(const struct mqttb_cli_proxy_info *i, const char *src, uint16_t sport,
                      const char *dst, uint16_t dport) {
  cr_assert(i->has_addr);
  const struct sockaddr_in *s = (const struct sockaddr_in *)&i->src;
  const struct sockaddr_in *d = (const struct sockaddr_in *)&i->dst;
  char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
  cr_assert(eq(int, s->sin_family, AF_INET));
  inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
  inet_ntop(AF_INET, &d->sin_addr, b, sizeof(b));
  cr_assert(eq(str, a, (char *)src));
  cr_assert(eq(str, b, (char *)dst));
  cr_assert(eq(u16, ntohs(s->sin_port), sport));
  cr_assert(eq(u16, ntohs(d->sin_port), dport));
}

/* ---------------------------------------------------------------- v1 */

Test(proxy, v1_tcp4_then_the_mqtt_bytes) {
  const char h[] = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 1883\r\n\x10\x0c";
  size_t hlen = strlen("PROXY TCP4 192.0.2.7 198.51.100.1 51234 1883\r\n");
  check_prefixes(1, (const uint8_t *)h, hlen);
  size_t used = 0;
  struct mqttb_cli_proxy_info i;
  char why[128];
  cr_assert(eq(int, parse(1, h, sizeof(h) - 1, &used, &i, why), MQTTB_CLI_PROXY_DONE));
  cr_assert(eq(sz, used, hlen), "the bytes after the header are not the header's");
  expect_v4(&i, "192.0.2.7", 51234, "198.51.100.1", 1883);
}

Test(proxy, v1_tcp6) {
  const char h[] = "PROXY TCP6 2001:db8::1 2001:db8::2 4000 8883\r\n";
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  cr_assert(eq(int, parse(1, h, strlen(h), &used, &i, why), MQTTB_CLI_PROXY_DONE));
  const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&i.src;
  cr_assert(eq(int, s->sin6_family, AF_INET6));
  char a[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
  cr_assert(eq(str, a, "2001:db8::1"));
  cr_assert(eq(u16, ntohs(s->sin6_port), 4000));
}

Test(proxy, v1_unknown_keeps_the_connection_addresses) {
  const char h[] = "PROXY UNKNOWN whatever follows\r\n";
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  cr_assert(eq(int, parse(1, h, strlen(h), &used, &i, why), MQTTB_CLI_PROXY_DONE));
  cr_assert(not(i.has_addr));
  cr_assert(eq(sz, used, strlen(h)));
}

Test(proxy, v1_longest_header_fits_and_one_more_byte_does_not) {
  /* 107 bytes: the TCP6 maximum of the specification. */
  const char h[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  cr_assert(eq(sz, strlen(h), 104));
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  cr_assert(eq(int, parse(1, h, strlen(h), &used, &i, why), MQTTB_CLI_PROXY_DONE));
  char no_end[200];
  memset(no_end, 'a', sizeof(no_end));
  memcpy(no_end, "PROXY UNKNOWN ", 14);
  cr_assert(eq(int, parse(1, no_end, 106, &used, &i, why), MQTTB_CLI_PROXY_MORE));
  cr_assert(eq(int, parse(1, no_end, 107, &used, &i, why), MQTTB_CLI_PROXY_BAD));
  cr_assert(not(eq(ptr, strstr(why, "CRLF"), NULL)), "%s", why);
}

Test(proxy, v1_bad_headers_are_refused_with_a_reason) {
  static const char *const bad[] = {
      "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c", /* plain MQTT on a PROXY listener */
      "GET / HTTP/1.1\r\n",
      "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
      "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
      "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
      "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
      "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n",
      "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
      "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
      "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
      "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
      "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    size_t used = 0;
    struct mqttb_cli_proxy_info i;
    char why[128] = "";
    size_t n = k == 0 ? 12 : strlen(bad[k]);
    cr_assert(eq(int, parse(1, bad[k], n, &used, &i, why), MQTTB_CLI_PROXY_BAD), "%zu: %s", k,
              bad[k]);
    cr_assert(lt(sz, 0, strlen(why)), "a reason for %zu", k);
  }
}

/* ---------------------------------------------------------------- v2 */

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A version 2 header: command, family byte, body. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n) {
  memcpy(out, sig, 12);
  out[12] = ver_cmd;
  out[13] = fam;
  out[14] = (uint8_t)(n >> 8);
  out[15] = (uint8_t)n;
  memcpy(out + 16, body, n);
  return 16 + n;
}

static const uint8_t v4_body[12] = {192, 0, 2, 7, 198, 51, 100, 1, 0xC8, 0x22, 0x07, 0x5B};

Test(proxy, v2_tcp4_then_the_tls_bytes) {
  uint8_t h[64];
  size_t n = v2(h, 0x21, 0x11, v4_body, sizeof(v4_body));
  check_prefixes(2, h, n);
  h[n] = 0x16; /* a TLS ClientHello follows */
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  cr_assert(eq(int, parse(2, h, n + 1, &used, &i, why), MQTTB_CLI_PROXY_DONE), "%s", why);
  cr_assert(eq(sz, used, n));
  expect_v4(&i, "192.0.2.7", 51234, "198.51.100.1", 1883);
  cr_assert(not(i.ssl));
}

Test(proxy, v2_tcp6_and_unix) {
  uint8_t body[216], h[300];
  memset(body, 0, sizeof(body));
  body[15] = 1; /* ::1 */
  body[31] = 2; /* ::2 */
  body[32] = 0x12;
  body[33] = 0x34;
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  size_t n = v2(h, 0x21, 0x21, body, 36);
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_DONE), "%s", why);
  const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&i.src;
  cr_assert(eq(int, s->sin6_family, AF_INET6));
  cr_assert(eq(u16, ntohs(s->sin6_port), 0x1234));
  memset(body, 0, sizeof(body));
  memcpy(body, "/run/client.sock", 16);
  n = v2(h, 0x21, 0x31, body, 216);
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_DONE), "%s", why);
  cr_assert(eq(int, ((const struct sockaddr_un *)&i.src)->sun_family, AF_UNIX));
  cr_assert(eq(str, ((struct sockaddr_un *)&i.src)->sun_path, "/run/client.sock"));
}

Test(proxy, v2_local_keeps_the_connection_addresses) {
  uint8_t h[64];
  size_t n = v2(h, 0x20, 0x00, NULL, 0);
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_DONE), "%s", why);
  cr_assert(not(i.has_addr));
  /* LOCAL with addresses: they are skipped. */
  n = v2(h, 0x20, 0x11, v4_body, sizeof(v4_body));
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_DONE), "%s", why);
  cr_assert(not(i.has_addr));
  cr_assert(eq(sz, used, n));
}

Test(proxy, v2_ssl_tlv_gives_the_certificate_name) {
  uint8_t body[128], h[160];
  size_t k = 0;
  memcpy(body, v4_body, 12);
  k = 12;
  body[k++] = 0x04; /* PP2_TYPE_NOOP, skipped */
  body[k++] = 0;
  body[k++] = 2;
  body[k++] = 0xAA;
  body[k++] = 0xBB;
  size_t ssl_at = k;
  body[k++] = 0x20; /* PP2_TYPE_SSL */
  k += 2;
  body[k++] = 0x07; /* SSL, cert on the connection and the session */
  body[k++] = 0;
  body[k++] = 0;
  body[k++] = 0;
  body[k++] = 0;    /* verify 0: ok */
  body[k++] = 0x21; /* version */
  body[k++] = 0;
  body[k++] = 7;
  memcpy(body + k, "TLSv1.3", 7);
  k += 7;
  body[k++] = 0x22; /* CN */
  body[k++] = 0;
  body[k++] = 5;
  memcpy(body + k, "alice", 5);
  k += 5;
  size_t ssl_len = k - ssl_at - 3;
  body[ssl_at + 1] = (uint8_t)(ssl_len >> 8);
  body[ssl_at + 2] = (uint8_t)ssl_len;
  size_t n = v2(h, 0x21, 0x11, body, k);
  check_prefixes(2, h, n);
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_DONE), "%s", why);
  cr_assert(i.ssl && i.cert_conn && i.cert_sess);
  cr_assert(eq(u32, i.verify, 0));
  cr_assert(eq(str, i.cn, "alice"));
  cr_assert(eq(str, i.tls_version, "TLSv1.3"));
  /* A CN with a NUL byte in it is no name. */
  body[k - 3] = '\0';
  n = v2(h, 0x21, 0x11, body, k);
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_DONE), "%s", why);
  cr_assert(eq(str, i.cn, ""));
}

Test(proxy, v2_bad_headers_are_refused_with_a_reason) {
  uint8_t h[3000], body[2100];
  memset(body, 0, sizeof(body));
  memcpy(body, v4_body, 12);
  size_t used;
  struct mqttb_cli_proxy_info i;
  char why[128];
  struct {
    uint8_t ver_cmd, fam;
    size_t blen;
    const char *what;
  } cases[] = {
      {0x11, 0x11, 12, "version"},     {0x22, 0x11, 12, "command"},
      {0x21, 0x41, 12, "family"},      {0x21, 0x11, 11, "too short"},
      {0x21, 0x21, 20, "too short"},   {0x21, 0x12, 12, "stream"},
      {0x21, 0x11, 2049, "more than"}, {0x21, 0x11, 14, "truncated TLV"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    size_t n = v2(h, cases[k].ver_cmd, cases[k].fam, body, cases[k].blen);
    why[0] = '\0';
    cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_BAD), "case %zu", k);
    cr_assert(not(eq(ptr, strstr(why, cases[k].what), NULL)), "case %zu: %s", k, why);
  }
  /* A TLV longer than the header. */
  body[12] = 0x04;
  body[13] = 0;
  body[14] = 10;
  size_t n = v2(h, 0x21, 0x11, body, 16);
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_BAD));
  /* An SSL TLV shorter than its fixed part. */
  body[12] = 0x20;
  body[14] = 1;
  n = v2(h, 0x21, 0x11, body, 16);
  cr_assert(eq(int, parse(2, h, n, &used, &i, why), MQTTB_CLI_PROXY_BAD));
  cr_assert(not(eq(ptr, strstr(why, "SSL"), NULL)), "%s", why);
  /* Not the signature: plain MQTT, or a version 1 header on a version 2 listener. */
  const char mqtt[] = "\x10\x0c\x00\x04MQTT";
  cr_assert(eq(int, parse(2, mqtt, 8, &used, &i, why), MQTTB_CLI_PROXY_BAD));
  const char v1[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
  cr_assert(eq(int, parse(2, v1, strlen(v1), &used, &i, why), MQTTB_CLI_PROXY_BAD));
  cr_assert(eq(int, parse(3, v1, strlen(v1), &used, &i, why), MQTTB_CLI_PROXY_BAD));
}

Test(proxy, at_the_maximum_a_header_is_never_more) {
  /* Whatever the bytes, MQTTB_CLI_PROXY_MAX of them decide. */
  uint8_t buf[MQTTB_CLI_PROXY_MAX];
  for (int v = 1; v <= 2; v++) {
    for (unsigned seed = 0; seed < 64; seed++) {
      for (size_t k = 0; k < sizeof(buf); k++)
        buf[k] = (uint8_t)(k * 31 + seed * 7);
      if (v == 2) {
        memcpy(buf, sig, 12);
        buf[12] = 0x21;
        buf[13] = 0x11;
      } else {
        memcpy(buf, "PROXY ", 6);
      }
      size_t used;
      struct mqttb_cli_proxy_info i;
      char why[128];
      cr_assert(not(eq(int, parse(v, buf, sizeof(buf), &used, &i, why), MQTTB_CLI_PROXY_MORE)));
    }
  }
}
