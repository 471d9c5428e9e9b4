/*
 * mqttb CLI: the PROXY protocol, versions 1 and 2 (see proxy.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN 0x22
#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04

static enum mqttb_cli_proxy_result bad(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum mqttb_cli_proxy_result bad(char *why, size_t whylen, const char *fmt, ...) {
  if (why != NULL && whylen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
  }
  return MQTTB_CLI_PROXY_BAD;
}

/* ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" ---- */

/* A decimal port without sign, leading zeros or excess. */
static bool v1_port(const char *s, uint16_t *out) {
  size_t n = strlen(s);
  if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
    return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v > 65535)
    return false;
  *out = (uint16_t)v;
  return true;
}

static bool v1_addr(int family, const char *ip, const char *port, struct sockaddr_storage *ss,
                    socklen_t *len) {
  uint16_t p;
  if (!v1_port(port, &p))
    return false;
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(p);
    *len = sizeof(*a);
    return inet_pton(AF_INET, ip, &a->sin_addr) == 1;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(p);
  *len = sizeof(*a);
  return inet_pton(AF_INET6, ip, &a->sin6_addr) == 1;
}

static enum mqttb_cli_proxy_result parse_v1(const uint8_t *buf, size_t len, size_t *used,
                                            struct mqttb_cli_proxy_info *out, char *why,
                                            size_t whylen) {
  static const char magic[] = "PROXY ";
  size_t m = len < 6 ? len : 6;
  if (memcmp(buf, magic, m) != 0)
    return bad(why, whylen, "no PROXY protocol version 1 header");
  const uint8_t *end = NULL;
  for (size_t i = 0; i < len && i < MQTTB_CLI_PROXY_V1_MAX; i++) {
    if (buf[i] == '\n' && i > 0 && buf[i - 1] == '\r') {
      end = buf + i - 1;
      break;
    }
    if (buf[i] == '\n' || buf[i] == '\0' || (i > 0 && buf[i - 1] == '\r'))
      return bad(why, whylen, "PROXY header: a stray control byte");
  }
  if (end == NULL) {
    if (len >= MQTTB_CLI_PROXY_V1_MAX)
      return bad(why, whylen, "PROXY header: no CRLF within %u bytes", MQTTB_CLI_PROXY_V1_MAX);
    return MQTTB_CLI_PROXY_MORE;
  }
  char line[MQTTB_CLI_PROXY_V1_MAX + 1];
  size_t n = (size_t)(end - buf);
  memcpy(line, buf, n);
  line[n] = '\0';
  *used = n + 2;
  memset(out, 0, sizeof(*out));
  /* Fields are separated by exactly one space. */
  char *f[7];
  int nf = 0;
  char *p = line;
  for (;;) {
    if (nf == 7)
      return bad(why, whylen, "PROXY header: too many fields");
    f[nf++] = p;
    char *sp = strchr(p, ' ');
    if (sp == NULL)
      break;
    *sp = '\0';
    p = sp + 1;
  }
  if (strcmp(f[1], "UNKNOWN") == 0)
    return MQTTB_CLI_PROXY_DONE; /* the rest of the line is ignored */
  int family = strcmp(f[1], "TCP4") == 0 ? AF_INET : strcmp(f[1], "TCP6") == 0 ? AF_INET6 : -1;
  if (family < 0)
    return bad(why, whylen, "PROXY header: unknown protocol '%.8s'", f[1]);
  if (nf != 6)
    return bad(why, whylen, "PROXY header: %d fields, not 6", nf);
  if (!v1_addr(family, f[2], f[4], &out->src, &out->src_len) ||
      !v1_addr(family, f[3], f[5], &out->dst, &out->dst_len))
    return bad(why, whylen, "PROXY header: bad address or port");
  out->has_addr = true;
  return MQTTB_CLI_PROXY_DONE;
}

/* ---- version 2: binary ---- */

static void copy_str(char *dst, size_t cap, const uint8_t *s, size_t n) {
  if (n >= cap || memchr(s, '\0', n) != NULL)
    n = 0; /* too long for the field, or not a string: left out */
  memcpy(dst, s, n);
  dst[n] = '\0';
}

/* The sub-TLVs of a PP2_TYPE_SSL value. */
static bool v2_ssl(const uint8_t *v, size_t n, struct mqttb_cli_proxy_info *out) {
  if (n < 5)
    return false;
  out->ssl = (v[0] & PP2_CLIENT_SSL) != 0;
  out->cert_conn = (v[0] & PP2_CLIENT_CERT_CONN) != 0;
  out->cert_sess = (v[0] & PP2_CLIENT_CERT_SESS) != 0;
  out->verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
  for (size_t pos = 5; pos < n;) {
    if (n - pos < 3)
      return false;
    uint8_t type = v[pos];
    size_t len = (size_t)v[pos + 1] << 8 | v[pos + 2];
    pos += 3;
    if (len > n - pos)
      return false;
    if (type == PP2_SUBTYPE_SSL_CN)
      copy_str(out->cn, sizeof(out->cn), v + pos, len);
    else if (type == PP2_SUBTYPE_SSL_VERSION)
      copy_str(out->tls_version, sizeof(out->tls_version), v + pos, len);
    pos += len;
  }
  return true;
}

static enum mqttb_cli_proxy_result parse_v2(const uint8_t *buf, size_t len, size_t *used,
                                            struct mqttb_cli_proxy_info *out, char *why,
                                            size_t whylen) {
  size_t m = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
  if (memcmp(buf, v2_sig, m) != 0)
    return bad(why, whylen, "no PROXY protocol version 2 signature");
  if (len < 16)
    return MQTTB_CLI_PROXY_MORE;
  uint8_t ver = buf[12] >> 4, cmd = buf[12] & 0x0f;
  uint8_t fam = buf[13] >> 4, proto = buf[13] & 0x0f;
  size_t body = (size_t)buf[14] << 8 | buf[15];
  if (ver != 2)
    return bad(why, whylen, "PROXY header: version %u, not 2", ver);
  if (cmd > 1)
    return bad(why, whylen, "PROXY header: unknown command %u", cmd);
  if (body > MQTTB_CLI_PROXY_V2_MAX_BODY)
    return bad(why, whylen, "PROXY header: %zu bytes of addresses and TLVs, more than %u", body,
               MQTTB_CLI_PROXY_V2_MAX_BODY);
  if (len < 16 + body)
    return MQTTB_CLI_PROXY_MORE;
  *used = 16 + body;
  memset(out, 0, sizeof(*out));
  const uint8_t *b = buf + 16;
  size_t alen;
  switch (fam) {
  case 0x1:
    alen = 12;
    break;
  case 0x2:
    alen = 36;
    break;
  case 0x3:
    alen = 216;
    break;
  case 0x0:
    alen = 0;
    break;
  default:
    return bad(why, whylen, "PROXY header: unknown address family %u", fam);
  }
  if (alen > body)
    return bad(why, whylen, "PROXY header: %zu bytes, too short for its addresses", body);
  /* LOCAL (the proxy's own health check), an unspecified family or
   * transport: the connection's addresses stand. */
  if (cmd == 1 && proto == 0x1 && fam == 0x1) {
    struct sockaddr_in *s = (struct sockaddr_in *)&out->src, *d = (struct sockaddr_in *)&out->dst;
    s->sin_family = d->sin_family = AF_INET;
    memcpy(&s->sin_addr, b, 4);
    memcpy(&d->sin_addr, b + 4, 4);
    memcpy(&s->sin_port, b + 8, 2);
    memcpy(&d->sin_port, b + 10, 2);
    out->src_len = out->dst_len = sizeof(*s);
    out->has_addr = true;
  } else if (cmd == 1 && proto == 0x1 && fam == 0x2) {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src,
                        *d = (struct sockaddr_in6 *)&out->dst;
    s->sin6_family = d->sin6_family = AF_INET6;
    memcpy(&s->sin6_addr, b, 16);
    memcpy(&d->sin6_addr, b + 16, 16);
    memcpy(&s->sin6_port, b + 32, 2);
    memcpy(&d->sin6_port, b + 34, 2);
    out->src_len = out->dst_len = sizeof(*s);
    out->has_addr = true;
  } else if (cmd == 1 && proto == 0x1 && fam == 0x3) {
    struct sockaddr_un *s = (struct sockaddr_un *)&out->src, *d = (struct sockaddr_un *)&out->dst;
    s->sun_family = d->sun_family = AF_UNIX;
    memcpy(s->sun_path, b, 107);
    memcpy(d->sun_path, b + 108, 107);
    out->src_len = out->dst_len = sizeof(*s);
    out->has_addr = true;
  } else if (cmd == 1 && proto != 0x1 && proto != 0x0) {
    return bad(why, whylen, "PROXY header: not a stream connection");
  }
  for (size_t pos = alen; pos < body;) {
    if (body - pos < 3)
      return bad(why, whylen, "PROXY header: a truncated TLV");
    uint8_t type = b[pos];
    size_t tlen = (size_t)b[pos + 1] << 8 | b[pos + 2];
    pos += 3;
    if (tlen > body - pos)
      return bad(why, whylen, "PROXY header: a TLV longer than the header");
    if (type == PP2_TYPE_SSL && !v2_ssl(b + pos, tlen, out))
      return bad(why, whylen, "PROXY header: a malformed SSL TLV");
    pos += tlen;
  }
  return MQTTB_CLI_PROXY_DONE;
}

enum mqttb_cli_proxy_result mqttb_cli_proxy_parse(int version, const uint8_t *buf, size_t len,
                                                  size_t *used, struct mqttb_cli_proxy_info *out,
                                                  char *why, size_t whylen) {
  if (len == 0)
    return MQTTB_CLI_PROXY_MORE;
  if (version == 1)
    return parse_v1(buf, len, used, out, why, whylen);
  if (version == 2)
    return parse_v2(buf, len, used, out, why, whylen);
  return bad(why, whylen, "PROXY protocol version %d is not 1 or 2", version);
}
