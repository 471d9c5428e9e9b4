/*
 * mqttb CLI: the PROXY protocol (HAProxy's, versions 1 and 2), server side.
 *
 * A proxy in front of the broker (HAProxy, a cloud load balancer) starts
 * each connection with a header naming the client's real address, and for
 * version 2 optionally what it knows of the client's TLS session (whether
 * there was one, whether a certificate was verified, its common name). On a
 * listener with enable_proxy_protocol the header must come first; a
 * connection without a valid one is closed.
 *
 * No I/O: the caller peeks at the socket (recv with MSG_PEEK, so bytes
 * after the header stay in the kernel for TLS or MQTT), calls
 * mqttb_cli_proxy_parse with what it has, and once it says DONE reads
 * exactly the header's bytes off the socket.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_PROXY_H
#define MQTTB_CLI_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest header accepted: version 1's maximum (107 bytes) and, for
 * version 2, 16 bytes of fixed part and at most this many bytes of
 * addresses and TLVs. */
#define MQTTB_CLI_PROXY_V1_MAX 107u
#define MQTTB_CLI_PROXY_V2_MAX_BODY 2048u
#define MQTTB_CLI_PROXY_MAX (16u + MQTTB_CLI_PROXY_V2_MAX_BODY)

enum mqttb_cli_proxy_result {
  MQTTB_CLI_PROXY_MORE, /* a valid start: more bytes are needed */
  MQTTB_CLI_PROXY_DONE, /* a complete header of *used bytes */
  MQTTB_CLI_PROXY_BAD   /* not a valid header (why says what) */
};

struct mqttb_cli_proxy_info {
  /* False for version 1's UNKNOWN and version 2's LOCAL command or
   * unspecified family: the connection's own addresses stand. */
  bool has_addr;
  struct sockaddr_storage src, dst;
  socklen_t src_len, dst_len;
  /* Version 2's PP2_TYPE_SSL: the client spoke TLS to the proxy. */
  bool ssl;
  bool cert_conn;  /* it presented a certificate on this connection */
  bool cert_sess;  /* ... or earlier in its TLS session */
  uint32_t verify; /* 0: the certificate was verified */
  /* PP2_SUBTYPE_SSL_CN: the certificate's common name (NUL-terminated;
   * empty when none was sent or it held a NUL byte). */
  char cn[256];
  char tls_version[32]; /* PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3" */
};

/*
 * Parse a header of @p version (1 or 2) from the first @p len bytes the
 * peer sent. DONE sets *used and *out; BAD writes a reason into why (whylen
 * bytes). MORE when @p len bytes are a valid beginning; at
 * MQTTB_CLI_PROXY_MAX bytes a header is always DONE or BAD.
 */
enum mqttb_cli_proxy_result mqttb_cli_proxy_parse(int version, const uint8_t *buf, size_t len,
                                                  size_t *used, struct mqttb_cli_proxy_info *out,
                                                  char *why, size_t whylen);

#endif /* MQTTB_CLI_PROXY_H */
