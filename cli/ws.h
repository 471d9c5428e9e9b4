/*
 * mqttb CLI: MQTT over WebSocket (RFC 6455), server side, bytes in and bytes
 * out. No I/O, no clock: the event loop reads and writes the socket, this
 * module turns what the client sent into MQTT bytes for mqttb_conn_recv and
 * frames what mqttb_conn_output holds for writev, without copying it.
 *
 * Opening handshake (RFC 6455, 4.2.1 and 4.2.2):
 * - The request may arrive in pieces. Request line and header fields are
 *   at most settings.max_request bytes, blank line included (default 8192;
 *   Mosquitto's websockets_headers_size is 4096): more is refused with
 *   431 Request Header Fields Too Large. Lines end in CRLF or a bare LF
 *   (RFC 7230, 3.5); empty lines before the request line are skipped.
 * - Required: "GET", HTTP/1.1 or a later 1.x; exactly one Host;
 *   Upgrade listing "websocket" and Connection listing "Upgrade" (both
 *   case-insensitive, comma lists, several lines combine); exactly one
 *   Sec-WebSocket-Key that is canonical base64 of 16 bytes; exactly one
 *   Sec-WebSocket-Version, "13". A subprotocol that MQTT defines
 *   [MQTT-6.0.0-3], [MQTT-6.0.0-4]: Sec-WebSocket-Protocol (a comma list;
 *   several lines combine) must offer "mqtt" or "mqttv3.1" (the name early
 *   MQTT.js and Paho used, as Mosquitto accepts it); the first of those the
 *   client lists is chosen, case-sensitively (RFC 6455, 11.3.4), and echoed.
 *   A client that offers neither is refused with 400: Mosquitto does not
 *   serve it either (2.0 with libwebsockets binds it to its HTTP-only
 *   protocol, which never reads MQTT; the built-in server of 2.1 closes).
 * - Any request target (path) is accepted, as Mosquitto does ("The
 *   WebSocket URI used to connect the client and server has no impact on
 *   the MQTT protocol", MQTT 3.1.1 and 5.0, section 6); it is kept for
 *   logging. Extensions offered (permessage-deflate) are declined by not
 *   naming them.
 * - Origin: when settings.origins lists any, a request with an Origin
 *   header must match one of them exactly, else 403 (Mosquitto 2.1's
 *   websockets_origin: a request without Origin passes).
 * - Refusals: 400 Bad Request (malformed or incomplete handshake),
 *   403 Forbidden (origin), 405 Method Not Allowed (not GET, with
 *   "Allow: GET"), 426 Upgrade Required (a Sec-WebSocket-Version other than
 *   13, with "Sec-WebSocket-Version: 13", RFC 6455 4.2.2), 431 (too long),
 *   503 (no memory for the request). Each has a one-line text body and
 *   "Connection: close"; the caller writes it and closes.
 * - Bytes after the request in the same read are frames, not lost.
 *
 * Frames from the client (RFC 6455, 5):
 * - Every frame must be masked (5.1) and have the reserved bits clear (no
 *   extension is negotiated, 5.2); opcodes other than continuation, binary,
 *   close, ping and pong fail the connection with 1002 (protocol error), as
 *   do a continuation without a message to continue, a new message inside
 *   a fragmented one, a fragmented or longer than 125 bytes control frame
 *   (5.5), a 64-bit length with its top bit set (5.2), a close frame of one
 *   byte or with a status code an endpoint may not send (7.4).
 * - A text frame closes with 1003 (unsupported data): MQTT is carried in
 *   binary frames only and "if any other type of data frame is received the
 *   recipient MUST close the Network Connection" [MQTT-6.0.0-1]. Mosquitto
 *   closes as well.
 * - Lengths in a longer form than needed (126 with a 16-bit 100) are taken:
 *   the rule that the minimal form MUST be used (5.2) binds the sender, and
 *   Mosquitto and libwebsockets take them too.
 * - A data frame longer than settings.max_frame bytes closes with 1009
 *   (message too big). Payload is handed on as it arrives, so the limit
 *   bounds nothing in memory; it exists to turn away absurd lengths early.
 *   The default is MQTTB_WS_DEFAULT_MAX_FRAME, the largest MQTT packet (1
 *   byte of type, 4 of remaining length, 268435455 of body): a frame may
 *   hold several packets [MQTT-6.0.0-2], so a tighter limit could refuse a
 *   valid client; the library enforces its own maximum packet size on what
 *   the frames carry. Messages may be fragmented without limit.
 * - Binary payload, of any number of frames and fragments, is unmasked and
 *   handed on in order, MQTT packets spanning frames or several to a frame
 *   alike [MQTT-6.0.0-2]; the library reassembles packets.
 * - Ping is answered by a pong with the same payload; if pings arrive
 *   faster than pongs are written, only the latest unanswered one is
 *   answered (5.5.3). Pongs are ignored. Control frames may come between
 *   the fragments of a message.
 * - A close frame is answered with a close frame echoing its status code
 *   (none if it had none; 5.5.1); its reason must be UTF-8 (else 1007).
 *   Then the WebSocket is closed: MQTT-wise the network connection ended
 *   without DISCONNECT unless one came before, so the will is published.
 *
 * Frames to the client: one unmasked binary frame (5.1: a server MUST NOT
 * mask) per batch of output (what one mqttb_conn_output call shows), its 2,
 * 4 or 10 byte header in this object's memory, the payload the library's
 * own segments, untouched. Control
 * frames (pong, close) and the handshake response go between frames, ahead
 * of data not yet framed. After a close frame no data follows (5.5.1).
 *
 * Use from the event loop (cli/loop.c), one mqttb_ws per connection of a
 * "protocol websockets" listener, next to its mqttb_conn:
 *
 *   read side, after recv() into a buffer of its own (buf, n):
 *     size_t m;
 *     int rc = mqttb_ws_recv(c->ws, buf, n, &m);  // buf[0..m) are MQTT bytes
 *     if (m > 0) conn_feed(c, buf, m);             // mqttb_conn_recv
 *     if (rc == MQTTB_WS_CLOSED) {                  // client closed, or failed
 *       log mqttb_ws_close_reason(c->ws, &code);
 *       mqttb_conn_transport_closed(c->mc, now);    // (if not closing already)
 *       c->closing = true;                          // write what is left, close
 *     }
 *     if (mqttb_ws_output_pending(c->ws) > 0) dirty_add(c);  // 101, pong, close
 *
 *   write side, conn_flush:
 *     mqttb_iovec lib[IOV_BATCH], out[IOV_BATCH + MQTTB_WS_IOV_EXTRA];
 *     if (c->closing) mqttb_ws_close(c->ws, MQTTB_WS_CLOSE_NORMAL); // once drained
 *     for (;;) {
 *       int n = mqttb_conn_output(c->mc, lib, IOV_BATCH);
 *       int k = mqttb_ws_output(c->ws, lib, n > 0 ? n : 0, out, IOV_BATCH + MQTTB_WS_IOV_EXTRA);
 *       if (k <= 0) break;                           // nothing (more) to send
 *       ssize_t w = writev(fd, (const struct iovec *)out, k);
 *       ... EAGAIN / errors as now ...
 *       size_t acked;
 *       mqttb_ws_output_ack(c->ws, (size_t)w, &acked);
 *       mqttb_conn_output_ack(c->mc, acked, now);   // MQTT bytes only
 *     }
 *     then, as now: closing -> reap (close the socket) once that loop ends.
 *
 *   conn_update_events needs no change (out_blocked drives EPOLLOUT);
 *   conn_destroy calls mqttb_ws_del.
 *
 * TLS (wss) sits below this: feed mqttb_ws_recv the plaintext that
 * mqttb_cli_tls_conn_read yields, and pass the entries of mqttb_ws_output
 * to mqttb_cli_tls_conn_writev (mqttb_iovec has the layout of struct
 * iovec), acknowledging the n it reports on DONE and nothing on
 * WANT_WRITE/WANT_READ: the next mqttb_ws_output then starts with the same
 * bytes, as that retry needs. Nothing here depends on the transport.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_WS_H
#define MQTTB_CLI_WS_H

#include <mqttb/mqttb.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest MQTT packet: type byte, 4-byte remaining length, 268435455. */
#define MQTTB_WS_DEFAULT_MAX_FRAME (268435455u + 5u)
#define MQTTB_WS_DEFAULT_MAX_REQUEST 8192u
/* Smallest max_request accepted by mqttb_ws_new. */
#define MQTTB_WS_MIN_MAX_REQUEST 256u

/* Entries mqttb_ws_output adds to the library's: a header remainder, a
 * segment split between two frames, the control bytes, a new header. */
#define MQTTB_WS_IOV_EXTRA 4

/* Close status codes (RFC 6455, 7.4.1) this module sends. */
#define MQTTB_WS_CLOSE_NORMAL 1000
#define MQTTB_WS_CLOSE_GOING_AWAY 1001
#define MQTTB_WS_CLOSE_PROTOCOL_ERROR 1002
#define MQTTB_WS_CLOSE_UNSUPPORTED_DATA 1003
#define MQTTB_WS_CLOSE_INVALID_DATA 1007
#define MQTTB_WS_CLOSE_POLICY 1008
#define MQTTB_WS_CLOSE_TOO_BIG 1009
#define MQTTB_WS_CLOSE_INTERNAL_ERROR 1011
/* Not sent: the code reported when a close frame carried no status. */
#define MQTTB_WS_CLOSE_NO_STATUS 1005

/* mqttb_ws_recv results. */
#define MQTTB_WS_OK 0
/* The WebSocket is over (the handshake was refused, the client closed, or
 * its frames broke the protocol): no more input is taken. Write what
 * mqttb_ws_output still gives, then close the connection. */
#define MQTTB_WS_CLOSED 1
/* A NULL argument, a bad setting, or an acknowledgement of more bytes than
 * the last mqttb_ws_output gave. */
#define MQTTB_WS_ERR_INVALID (-1)

typedef struct mqttb_ws_settings {
  /* Largest request (request line, header fields, blank line) in bytes,
   * at least MQTTB_WS_MIN_MAX_REQUEST. */
  size_t max_request;
  /* Largest data frame payload accepted, in bytes; at least 1. */
  uint64_t max_frame;
  /* Origins allowed (exact, case-sensitive matches against the Origin
   * header); none (NULL, 0): any. Borrowed: the strings must outlive
   * every mqttb_ws made with these settings. */
  const char *const *origins;
  size_t origin_count;
} mqttb_ws_settings;

/* The defaults: MQTTB_WS_DEFAULT_MAX_REQUEST, MQTTB_WS_DEFAULT_MAX_FRAME, any origin. */
void mqttb_ws_settings_default(mqttb_ws_settings *settings);

typedef struct mqttb_ws mqttb_ws;

/* A server-side WebSocket awaiting the client's opening handshake. The
 * settings are copied (the origin strings are borrowed). NULL when out of
 * memory or a setting is out of range. */
mqttb_ws *mqttb_ws_new(const mqttb_ws_settings *settings);
/* Frees @p ws; NULL is ignored. */
void mqttb_ws_del(mqttb_ws *ws);

/*
 * Take @p len bytes the client sent, in place: on return the first
 * *@p mqtt_len bytes of @p buf are the MQTT bytes they carried, unmasked,
 * in order (feed them to mqttb_conn_recv); the rest of @p buf is
 * overwritten scratch. Handshake bytes are copied inside @p ws, so input may
 * be split anywhere. The output this causes (the handshake response, a
 * pong, a close frame) is queued for mqttb_ws_output, behind what that
 * gave last (it stays given: see there).
 * Returns MQTTB_WS_OK, MQTTB_WS_CLOSED (also on every call after the
 * WebSocket closed; *@p mqtt_len is still set, to the MQTT bytes that came
 * before the end), or MQTTB_WS_ERR_INVALID.
 */
int mqttb_ws_recv(mqttb_ws *ws, uint8_t *buf, size_t len, size_t *mqtt_len);

/*
 * What to write next: fills up to @p out_max entries of @p out with the
 * bytes to send, in order, given the library's pending output @p lib
 * (@p n_lib entries, from mqttb_conn_output; 0 when it has none). Entries
 * point at memory of @p ws (valid until the next call on it) and at the
 * library's segments (valid as the library says). @p out_max of
 * @p n_lib + MQTTB_WS_IOV_EXTRA leaves room for everything; with fewer,
 * less is given. Data frames start only once the handshake is done and
 * never after a close frame; a frame partly written is always finished
 * first. Nothing is consumed until mqttb_ws_output_ack.
 * Until then what was given stays given: called again (with the library's
 * output as it is then, and the same @p out_max), it gives the same bytes
 * first, maybe from other addresses, maybe with more after; control frames
 * queued meanwhile come after them. That is the retry rule of TLS
 * (mqttb_cli_tls_conn_writev: after WANT_WRITE the same bytes again):
 * after WANT_WRITE or EAGAIN, do not acknowledge, just call this again.
 * Returns the entries filled (0: nothing to write now; when
 * mqttb_ws_is_closed, nothing ever again), or MQTTB_WS_ERR_INVALID.
 */
int mqttb_ws_output(mqttb_ws *ws, const mqttb_iovec *lib, int n_lib, mqttb_iovec *out, int out_max);

/*
 * Mark the first @p written bytes of what the last mqttb_ws_output gave as
 * written, and set *@p mqtt_written to how many of them were the library's
 * (pass that to mqttb_conn_output_ack). A frame header written in part is
 * remembered, and its frame finished by the next calls; what was given and
 * not written is given no longer (a data frame not begun is framed afresh).
 * Call it after a write that took @p written bytes (0 allowed) of what the
 * last mqttb_ws_output gave, before calling that again; mqttb_ws_recv may
 * come between.
 * Returns MQTTB_WS_OK, or MQTTB_WS_ERR_INVALID (NULL, no output given, or
 * @p written more than it held; nothing is changed).
 */
int mqttb_ws_output_ack(mqttb_ws *ws, size_t written, size_t *mqtt_written);

/* Bytes of this module's own waiting to be written (handshake response,
 * control frames, the rest of a frame header): when not 0 after
 * mqttb_ws_recv, the connection has something to flush even if the library
 * has not. */
size_t mqttb_ws_output_pending(const mqttb_ws *ws);

/*
 * The server ends the WebSocket (the broker closed the MQTT connection):
 * data already handed to mqttb_ws_output and what the library still holds
 * is framed as usual, and once mqttb_ws_output sees the library with
 * nothing left (@p n_lib 0) a close frame with @p code follows; then
 * mqttb_ws_is_closed. Before the handshake completed there is nothing to
 * close: the WebSocket just ends. A second call, or one after the
 * WebSocket closed, changes nothing. @p code must be one an endpoint may
 * send (1000-1003, 1007-1014, 3000-4999), else MQTTB_WS_ERR_INVALID.
 */
int mqttb_ws_close(mqttb_ws *ws, int code);

/* True once the WebSocket is over: the handshake refused, a close frame
 * received or sent (or queued), or the protocol broken. Input is then
 * ignored; write what mqttb_ws_output gives, then close the connection. */
bool mqttb_ws_is_closed(const mqttb_ws *ws);

/* True once the handshake succeeded (the 101 response is queued), and
 * from then on, also after the WebSocket closed: for logging the path and
 * subprotocol once. */
bool mqttb_ws_handshake_done(const mqttb_ws *ws);

/*
 * Why the WebSocket ended, for the log: a constant sentence ("client sent
 * an unmasked frame"), and in *@p code (when not NULL) the HTTP status of
 * a refused handshake (400-599), or the close code sent or, when the
 * client closed, the one it sent (MQTTB_WS_CLOSE_NO_STATUS if none).
 * NULL (and *@p code 0) while the WebSocket is not over.
 */
const char *mqttb_ws_close_reason(const mqttb_ws *ws, int *code);

/* From the client's request, once it has been read (NULL before, and for
 * parts a refused request did not get to): the request target as sent
 * ("/mqtt"), the subprotocol chosen ("mqtt" or "mqttv3.1"), the Origin
 * header. NUL-terminated, valid until mqttb_ws_del. */
const char *mqttb_ws_path(const mqttb_ws *ws);
const char *mqttb_ws_subprotocol(const mqttb_ws *ws);
const char *mqttb_ws_origin(const mqttb_ws *ws);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455, 4.2.2, item 5.4):
 * base64(SHA-1(key "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28
 * characters and a NUL into @p out. */
void mqttb_ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif /* MQTTB_CLI_WS_H */
