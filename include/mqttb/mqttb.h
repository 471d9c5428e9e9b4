/*
 * libmqttbroker: an embeddable, transport-agnostic MQTT broker.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_MQTTB_H
#define MQTTB_MQTTB_H

/**
 * @file mqttb.h
 * @brief The public interface of libmqttbroker.
 *
 * The library performs no I/O and reads no clock. The embedder creates a
 * broker (::mqttb_broker_new), creates one connection object per transport
 * connection (::mqttb_conn_new), feeds the bytes the peer sent into it
 * (::mqttb_conn_recv) and drains the bytes the broker wants to send
 * (::mqttb_conn_output, ::mqttb_conn_output_ack). Every call that can advance
 * state takes @c now, a monotonic time in milliseconds chosen by the
 * embedder. The broker reports its next timer deadline
 * (::mqttb_broker_next_deadline) and expects ::mqttb_broker_handle_timers to
 * be called at or after it.
 *
 * One broker and all its connections belong to one thread at a time.
 * Callbacks are invoked synchronously from inside library calls; a callback
 * must not call ::mqttb_conn_del or ::mqttb_broker_del.
 */

#include <stddef.h>
#include <stdint.h>

#include <mqttb/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @cond INTERNAL */
#if defined(_WIN32)
#define MQTTB_EXTERN
#elif defined(MQTTB_BUILDING_LIBRARY)
#define MQTTB_EXTERN __attribute__((visibility("default")))
#else
#define MQTTB_EXTERN
#endif
/** @endcond */

/**
 * @defgroup errors Error codes
 *
 * Library errors are negative integers, grouped in tiers so that an embedder
 * can tell what a failure affects:
 *
 * - -100 to -199: the call failed; nothing changed.
 * - -500 to -599: the connection is closed (or closing); the broker and
 *   all other connections are unaffected.
 * - -900 to -999: the broker itself cannot continue.
 *
 * MQTT reason codes (CONNACK return codes, SUBACK codes) are a separate
 * enumeration, ::mqttb_reason, and never collide with these values.
 * @{
 */
/** Success. */
#define MQTTB_OK 0
/** An argument was NULL or out of range. */
#define MQTTB_ERR_INVALID_ARGUMENT (-101)
/** Memory could not be allocated; nothing changed. */
#define MQTTB_ERR_NOMEM (-102)
/** The operation is not possible in the object's current state (for
 *  example, input fed to a connection that is already closing). */
#define MQTTB_ERR_INVALID_STATE (-103)
/** The broker already holds its configured maximum of connections. */
#define MQTTB_ERR_TOO_MANY_CONNECTIONS (-104)
/** A settings, callbacks or stats struct version is not known to this
 *  library. */
#define MQTTB_ERR_VERSION (-105)
/** A configured limit (for example max_subscriptions) was reached; nothing
 *  changed. */
#define MQTTB_ERR_QUOTA (-106)

/** The client closed the session with DISCONNECT (a normal close). */
#define MQTTB_ERR_CLIENT_DISCONNECTED (-500)
/** The peer sent bytes that are not a well-formed MQTT packet. */
#define MQTTB_ERR_MALFORMED (-501)
/** The peer broke a protocol rule (wrong packet for the state, second
 *  CONNECT, forbidden flag combination, ...). */
#define MQTTB_ERR_PROTOCOL (-502)
/** A packet exceeded the configured maximum packet size. */
#define MQTTB_ERR_PACKET_TOO_LARGE (-503)
/** The CONNECT asked for a protocol name or level the broker does not
 *  speak; a CONNACK with ::MQTTB_REASON_UNACCEPTABLE_PROTOCOL was sent when
 *  the spec allows it. */
#define MQTTB_ERR_UNSUPPORTED_PROTOCOL (-504)
/** The client identifier was rejected (CONNACK 0x02). */
#define MQTTB_ERR_IDENTIFIER_REJECTED (-505)
/** The authenticate callback refused the client (CONNACK 0x04/0x05). */
#define MQTTB_ERR_NOT_AUTHORIZED (-506)
/** No packet arrived within 1.5 times the keep-alive interval. */
#define MQTTB_ERR_KEEPALIVE_TIMEOUT (-507)
/** No CONNECT arrived within the configured connect timeout. */
#define MQTTB_ERR_CONNECT_TIMEOUT (-508)
/** Another connection took over this connection's client identifier. */
#define MQTTB_ERR_TAKEN_OVER (-509)
/** The transport was closed (::mqttb_conn_transport_closed). */
#define MQTTB_ERR_TRANSPORT_CLOSED (-510)
/** Memory ran out while serving this connection; it was closed so that
 *  the broker stays consistent. */
#define MQTTB_ERR_CONN_NOMEM (-511)
/** The broker is shutting down (::mqttb_broker_del). */
#define MQTTB_ERR_SHUTDOWN (-512)
/** The authenticate callback refused the client as unavailable (CONNACK
 *  0x03; MQTT 5: server unavailable, server busy, use another server,
 *  server moved, quota exceeded). */
#define MQTTB_ERR_SERVER_UNAVAILABLE (-513)
/** The connection's output did not drain within the output stall timeout:
 *  the client stopped reading. */
#define MQTTB_ERR_OUTPUT_STALLED (-514)
/** @} */

/**
 * @brief A short, static, English description of an error code.
 * @param err an ::MQTTB_OK or @c MQTTB_ERR_* value.
 * @return a static string; "unknown error" for a value this library does not
 *         define. Never NULL.
 */
MQTTB_EXTERN const char *mqttb_strerror(int err);

/**
 * @brief Whether an error code means that something can no longer be used.
 *
 * Call-level errors (-100 to -199) leave everything as it was: the call may
 * be retried. Connection errors (-500 to -599) mean the connection is
 * closed or closing; broker errors (-900 to -999) mean the broker cannot
 * continue.
 * @param err an ::MQTTB_OK or @c MQTTB_ERR_* value.
 * @return 1 for a connection or broker error, 0 otherwise (success and
 *         call-level errors included).
 */
MQTTB_EXTERN int mqttb_err_is_fatal(int err);

/** @brief MQTT reason codes sent to clients (CONNACK return codes, SUBACK
 *  return codes). Distinct from the library's error codes. */
typedef enum mqttb_reason {
  /** CONNACK: connection accepted; SUBACK: granted QoS 0. */
  MQTTB_REASON_SUCCESS = 0x00,
  /** SUBACK: granted QoS 1. */
  MQTTB_REASON_GRANTED_QOS1 = 0x01,
  /** SUBACK: granted QoS 2. */
  MQTTB_REASON_GRANTED_QOS2 = 0x02,
  /** CONNACK: unacceptable protocol version. */
  MQTTB_REASON_UNACCEPTABLE_PROTOCOL = 0x01,
  /** CONNACK: identifier rejected. */
  MQTTB_REASON_IDENTIFIER_REJECTED = 0x02,
  /** CONNACK: server unavailable. */
  MQTTB_REASON_SERVER_UNAVAILABLE = 0x03,
  /** CONNACK: bad user name or password. */
  MQTTB_REASON_BAD_USERNAME_OR_PASSWORD = 0x04,
  /** CONNACK: not authorized. */
  MQTTB_REASON_NOT_AUTHORIZED = 0x05,
  /** SUBACK: the subscription was refused (MQTT 3.x). */
  MQTTB_REASON_SUBSCRIBE_FAILURE = 0x80,
  /* MQTT 5 reason codes (also used by the authenticate callback, which the
   * library maps to the MQTT 3.x CONNACK codes for 3.x clients). */
  /** MQTT 5: normal disconnection. */
  MQTTB_REASON_NORMAL_DISCONNECTION = 0x00,
  /** MQTT 5 DISCONNECT from a client: publish the will anyway. */
  MQTTB_REASON_DISCONNECT_WITH_WILL = 0x04,
  /** MQTT 5: the message was accepted but nobody subscribes to it. */
  MQTTB_REASON_NO_MATCHING_SUBSCRIBERS = 0x10,
  /** MQTT 5 UNSUBACK: there was no such subscription. */
  MQTTB_REASON_NO_SUBSCRIPTION_EXISTED = 0x11,
  /** MQTT 5 AUTH / authenticate callback: another step is needed. */
  MQTTB_REASON_CONTINUE_AUTHENTICATION = 0x18,
  /** MQTT 5 AUTH from a client: start re-authentication. */
  MQTTB_REASON_REAUTHENTICATE = 0x19,
  /** MQTT 5: unspecified error. */
  MQTTB_REASON_UNSPECIFIED_ERROR = 0x80,
  /** MQTT 5: malformed packet. */
  MQTTB_REASON_MALFORMED_PACKET = 0x81,
  /** MQTT 5: protocol error. */
  MQTTB_REASON_PROTOCOL_ERROR = 0x82,
  /** MQTT 5: implementation specific error. */
  MQTTB_REASON_IMPLEMENTATION_SPECIFIC = 0x83,
  /** MQTT 5 CONNACK: unsupported protocol version. */
  MQTTB_REASON_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
  /** MQTT 5 CONNACK: client identifier not valid. */
  MQTTB_REASON_CLIENT_ID_NOT_VALID = 0x85,
  /** MQTT 5: bad user name or password. */
  MQTTB_REASON_BAD_CREDENTIALS = 0x86,
  /** MQTT 5: not authorized. */
  MQTTB_REASON_NOT_AUTHORIZED_5 = 0x87,
  /** MQTT 5: server unavailable. */
  MQTTB_REASON_SERVER_UNAVAILABLE_5 = 0x88,
  /** MQTT 5: server busy. */
  MQTTB_REASON_SERVER_BUSY = 0x89,
  /** MQTT 5: banned. */
  MQTTB_REASON_BANNED = 0x8A,
  /** MQTT 5 DISCONNECT: server shutting down. */
  MQTTB_REASON_SERVER_SHUTTING_DOWN = 0x8B,
  /** MQTT 5: bad authentication method. */
  MQTTB_REASON_BAD_AUTH_METHOD = 0x8C,
  /** MQTT 5 DISCONNECT: keep alive timeout. */
  MQTTB_REASON_KEEP_ALIVE_TIMEOUT = 0x8D,
  /** MQTT 5 DISCONNECT: session taken over. */
  MQTTB_REASON_SESSION_TAKEN_OVER = 0x8E,
  /** MQTT 5: topic filter invalid. */
  MQTTB_REASON_TOPIC_FILTER_INVALID = 0x8F,
  /** MQTT 5: topic name invalid. */
  MQTTB_REASON_TOPIC_NAME_INVALID = 0x90,
  /** MQTT 5: packet identifier in use. */
  MQTTB_REASON_PACKET_ID_IN_USE = 0x91,
  /** MQTT 5: packet identifier not found. */
  MQTTB_REASON_PACKET_ID_NOT_FOUND = 0x92,
  /** MQTT 5 DISCONNECT: receive maximum exceeded. */
  MQTTB_REASON_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
  /** MQTT 5 DISCONNECT: topic alias invalid. */
  MQTTB_REASON_TOPIC_ALIAS_INVALID = 0x94,
  /** MQTT 5: packet too large. */
  MQTTB_REASON_PACKET_TOO_LARGE = 0x95,
  /** MQTT 5: quota exceeded. */
  MQTTB_REASON_QUOTA_EXCEEDED = 0x97,
  /** MQTT 5: payload format invalid. */
  MQTTB_REASON_PAYLOAD_FORMAT_INVALID = 0x99,
  /** MQTT 5: retain not supported. */
  MQTTB_REASON_RETAIN_NOT_SUPPORTED = 0x9A,
  /** MQTT 5: QoS not supported. */
  MQTTB_REASON_QOS_NOT_SUPPORTED = 0x9B,
  /** MQTT 5: use another server (temporary redirect). */
  MQTTB_REASON_USE_ANOTHER_SERVER = 0x9C,
  /** MQTT 5: server moved (permanent redirect). */
  MQTTB_REASON_SERVER_MOVED = 0x9D,
  /** MQTT 5 SUBACK: shared subscriptions not supported. */
  MQTTB_REASON_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
  /** MQTT 5 SUBACK: subscription identifiers not supported. */
  MQTTB_REASON_SUB_IDS_NOT_SUPPORTED = 0xA1,
  /** MQTT 5 SUBACK: wildcard subscriptions not supported. */
  MQTTB_REASON_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2
} mqttb_reason;

/** @brief Severity of a log message. */
typedef enum mqttb_log_level {
  /** The broker cannot do something it should (out of memory). */
  MQTTB_LOG_ERROR = 0,
  /** Something was dropped or refused for lack of resources. */
  MQTTB_LOG_WARNING = 1,
  /** A client misbehaved or was refused; its connection was closed. */
  MQTTB_LOG_NOTICE = 2,
  /** Normal events worth a line. */
  MQTTB_LOG_INFO = 3,
  /** Everything else: each connect, close, will, unknown acknowledgement. */
  MQTTB_LOG_DEBUG = 4
} mqttb_log_level;

/** @brief An opaque broker: sessions, subscriptions, retained messages. */
typedef struct mqttb_broker mqttb_broker;
/** @brief An opaque connection: one transport connection to one client. */
typedef struct mqttb_conn mqttb_conn;

/**
 * @brief Allocator hooks, used for every allocation a broker makes.
 *
 * All four functions must be set. Each receives @c user_data last. A hook
 * may fail (return NULL) at any time; the library then returns an error and
 * stays consistent.
 */
typedef struct mqttb_mem {
  /** As malloc(3); never called with size 0. */
  void *(*malloc)(size_t size, void *user_data);
  /** As free(3); never called with NULL. */
  void (*free)(void *ptr, void *user_data);
  /** As calloc(3). */
  void *(*calloc)(size_t nmemb, size_t size, void *user_data);
  /** As realloc(3); on failure the old block must stay valid. */
  void *(*realloc)(void *ptr, size_t size, void *user_data);
  /** Passed last to every hook. */
  void *user_data;
} mqttb_mem;

/** @brief What an authorize callback is asked about. */
typedef enum mqttb_access {
  /** The client wants to publish to a topic name. */
  MQTTB_ACCESS_PUBLISH = 1,
  /** The client wants to subscribe to a topic filter. */
  MQTTB_ACCESS_SUBSCRIBE = 2
} mqttb_access;

/**
 * @brief The credentials a client presented in CONNECT.
 *
 * All pointers are borrowed and valid only during the callback. Strings are
 * not NUL-terminated; use the lengths.
 */
typedef struct mqttb_auth_request {
  /** The client identifier (an assigned one when the client sent none). */
  const char *client_id;
  /** Bytes in @c client_id. */
  size_t client_id_len;
  /** NULL when the CONNECT carried no user name. */
  const char *username;
  /** Bytes in @c username. */
  size_t username_len;
  /** NULL when the CONNECT carried no password. Binary data. */
  const uint8_t *password;
  /** Bytes in @c password. */
  size_t password_len;
  /** The protocol level: 3 (MQTT 3.1), 4 (MQTT 3.1.1), 5 (MQTT 5). */
  int protocol_level;
  /** MQTT 5 enhanced authentication: the Authentication Method, or NULL. */
  const char *auth_method;
  /** Bytes in @c auth_method. */
  size_t auth_method_len;
  /** MQTT 5: the Authentication Data of this step (CONNECT or AUTH), or
   *  NULL. */
  const uint8_t *auth_data;
  /** Bytes in @c auth_data. */
  size_t auth_data_len;
  /** 0 for the CONNECT, then 1, 2, ... for each AUTH packet of the same
   *  exchange. */
  int step;
  /** 1 when the client started a re-authentication (AUTH 0x19) on an
   *  established connection. */
  int reauthenticate;
} mqttb_auth_request;

/**
 * @brief Callbacks from the broker to the embedder.
 *
 * Every member may be NULL. @c user_data is the pointer given to
 * ::mqttb_broker_new. A connection's own pointer is available through
 * ::mqttb_conn_get_user_data.
 */
typedef struct mqttb_callbacks {
  /**
   * The connection's output went from empty to non-empty: call
   * ::mqttb_conn_output when the transport can take bytes. Called from
   * inside any library call, including calls made on other connections.
   */
  void (*want_write)(mqttb_conn *conn, void *user_data);
  /**
   * The broker wants this transport closed. @p reason is an
   * @c MQTTB_ERR_* code saying why (::MQTTB_ERR_CLIENT_DISCONNECTED for a
   * normal DISCONNECT). Output that is still pending (for example a CONNACK
   * carrying a refusal) should be written before closing. The connection
   * object stays valid until the embedder calls ::mqttb_conn_del. Called at
   * most once per connection.
   */
  void (*on_close)(mqttb_conn *conn, int reason, void *user_data);
  /**
   * A CONNECT was accepted and CONNACK queued: the connection now has a
   * client identifier (::mqttb_conn_get_client_id).
   */
  void (*on_connect)(mqttb_conn *conn, void *user_data);
  /**
   * Decide whether a client may connect. Return ::MQTTB_REASON_SUCCESS to
   * accept, or a refusal: ::MQTTB_REASON_BAD_USERNAME_OR_PASSWORD,
   * ::MQTTB_REASON_NOT_AUTHORIZED, or any MQTT 5 CONNACK reason code such
   * as ::MQTTB_REASON_BAD_CREDENTIALS, ::MQTTB_REASON_BANNED,
   * ::MQTTB_REASON_USE_ANOTHER_SERVER or ::MQTTB_REASON_SERVER_MOVED (call
   * ::mqttb_conn_set_server_reference first to name the server). MQTT 3.x
   * clients get the nearest 3.x code.
   *
   * MQTT 5 enhanced authentication: when @c req->auth_method is set, return
   * ::MQTTB_REASON_CONTINUE_AUTHENTICATION to send an AUTH packet carrying
   * the data given to ::mqttb_conn_set_auth_data; the client's answer calls
   * this again with the next @c step. The same applies to re-authentication
   * (@c req->reauthenticate), where a refusal disconnects the client. When
   * NULL every client is accepted, and clients asking for an authentication
   * method are refused with ::MQTTB_REASON_BAD_AUTH_METHOD.
   */
  int (*authenticate)(mqttb_conn *conn, const mqttb_auth_request *req, void *user_data);
  /**
   * Decide whether a connected client may publish to @p topic or subscribe
   * to the filter @p topic (not NUL-terminated, @p topic_len bytes).
   * Return ::MQTTB_REASON_SUCCESS (0) to allow, or the MQTT 5 reason code to
   * refuse with (0x80 to 0xFF: for example ::MQTTB_REASON_NOT_AUTHORIZED_5,
   * ::MQTTB_REASON_QUOTA_EXCEEDED, ::MQTTB_REASON_UNSPECIFIED_ERROR, or
   * ::MQTTB_REASON_TOPIC_NAME_INVALID); any other non-zero value refuses
   * with ::MQTTB_REASON_NOT_AUTHORIZED_5. MQTT 5 clients get that code in
   * the SUBACK for the filter, or in the PUBACK/PUBREC of a QoS 1/2
   * PUBLISH; MQTT 3.x clients get SUBACK 0x80, and a refused PUBLISH is
   * acknowledged as the protocol requires but not delivered. When NULL
   * everything is allowed.
   */
  int (*authorize)(mqttb_conn *conn, mqttb_access access, const char *topic, size_t topic_len,
                   int qos, int retain, void *user_data);
  /** A log line, without a trailing newline; @p msg is valid only during the call. */
  void (*log)(mqttb_broker *broker, mqttb_log_level level, const char *msg, void *user_data);
  /**
   * The current wall-clock time in seconds since the Unix epoch, for
   * @c $SYS/broker/time. The library reads no clock itself. When NULL that
   * topic is not published.
   */
  int64_t (*wallclock)(void *user_data);
  /**
   * Bytes of heap in use, for @c $SYS/broker/heap/current. When NULL that
   * topic is not published.
   */
  uint64_t (*heap_usage)(void *user_data);
} mqttb_callbacks;

/**
 * @defgroup versions Struct versions
 *
 * ::mqttb_settings, ::mqttb_callbacks and ::mqttb_stats only ever grow at
 * the end. Each call that takes one also takes the version the caller was
 * compiled with (the macros pass this header's), and the library reads or
 * writes only that version's bytes: a program built against an older
 * header keeps working with a newer library, whose new fields then take
 * their defaults (settings), stay NULL (callbacks) or are not written
 * (stats).
 * @{
 */
/** The first version of ::mqttb_settings. */
#define MQTTB_SETTINGS_V1 1
/** The second version of ::mqttb_settings: adds work_budget, memory_limit,
 *  max_connect_size and max_input_bytes_total. */
#define MQTTB_SETTINGS_V2 2
/** The version of ::mqttb_settings this header describes. */
#define MQTTB_SETTINGS_VERSION MQTTB_SETTINGS_V2
/** The first version of ::mqttb_callbacks. */
#define MQTTB_CALLBACKS_V1 1
/** The version of ::mqttb_callbacks this header describes. */
#define MQTTB_CALLBACKS_VERSION MQTTB_CALLBACKS_V1
/** The first version of ::mqttb_stats. */
#define MQTTB_STATS_V1 1
/** The version of ::mqttb_stats this header describes. */
#define MQTTB_STATS_VERSION MQTTB_STATS_V1
/** @} */

/**
 * @brief Broker limits and behaviour. Copied by ::mqttb_broker_new.
 *
 * Always initialise with ::mqttb_settings_default, then change fields.
 * New fields are only ever added at the end.
 */
typedef struct mqttb_settings {
  /** Largest packet accepted from a client, in bytes including the fixed
   *  header. A larger packet closes the connection before its body is
   *  buffered. Default 268435460 (the protocol's maximum). */
  uint32_t max_packet_size;
  /** Most QoS 1 and 2 messages in flight to one client at a time; the rest
   *  wait in the session queue. Default 20 (as Mosquitto's
   *  max_inflight_messages). 0 means 65535. */
  uint32_t max_inflight_messages;
  /** Most QoS 1 and 2 messages queued per session beyond those in flight;
   *  more are dropped and counted. Default 1000 (as Mosquitto's
   *  max_queued_messages). 0 means no limit. */
  uint32_t max_queued_messages;
  /** Most payload bytes queued per session beyond those in flight. Default
   *  0: no limit (as Mosquitto's max_queued_bytes). */
  uint64_t max_queued_bytes;
  /** Most connection objects at once; ::mqttb_conn_new fails beyond. 0 means
   *  no limit. Default 0. */
  uint32_t max_connections;
  /** Milliseconds a new connection may take to send CONNECT. Default 10000.
   *  0 disables the limit. */
  uint32_t connect_timeout_ms;
  /** Largest keep-alive accepted, in seconds. MQTT 3.x cannot tell a
   *  client to use another value, so a CONNECT asking for more, or for 0
   *  (none), is refused with CONNACK 0x02, as Mosquitto does. Default 0:
   *  no limit. */
  uint32_t max_keepalive;
  /** Whether QoS 0 messages are queued for offline persistent sessions.
   *  Default 0 (as Mosquitto's queue_qos0_messages false). */
  int queue_qos0_messages;
  /** Whether a client may connect with a zero-length client identifier and
   *  clean session 1 (the broker then assigns one). Default 1. */
  int allow_zero_length_clientid;
  /** Prefix of identifiers assigned to clients that sent none.
   *  Default "auto-". At most 32 bytes are used. */
  const char *auto_id_prefix;
  /** Whether retained messages are kept. Default 1. */
  int retain_available;
  /** Milliseconds between updates of the @c $SYS topic tree (see
   *  docs/sys-topics.md). Default 10000, as Mosquitto's sys_interval of 10
   *  seconds. 0 turns the tree off. */
  uint32_t sys_interval_ms;
  /** MQTT 5 Receive Maximum the broker announces: QoS 1 and 2 PUBLISH a
   *  client may have unacknowledged at the broker; a client with more QoS 2
   *  messages awaiting PUBREL is disconnected (0x93). Default 0: the same
   *  as max_inflight_messages (65535 when that is 0), as Mosquitto
   *  announces its max_inflight_messages. */
  uint16_t receive_maximum;
  /** MQTT 5 Topic Alias Maximum the broker announces: how many aliases a
   *  client may use towards the broker. Default 10 (as Mosquitto's
   *  max_topic_alias). 0 disables inbound aliases. */
  uint16_t topic_alias_maximum;
  /** Highest QoS the broker supports (0, 1 or 2). Default 2. MQTT 5 clients
   *  learn it from CONNACK; a subscription asking for more is granted this. */
  uint8_t max_qos;
  /** Whether wildcard subscriptions are allowed. Default 1. */
  int wildcard_subscriptions;
  /** Whether MQTT 5 subscription identifiers are supported. Default 1. */
  int subscription_identifiers;
  /** Whether MQTT 5 shared subscriptions ($share/group/filter) are
   *  supported. Default 1. */
  int shared_subscriptions;
  /** Response Information sent to MQTT 5 clients that ask for it (Request
   *  Response Information 1). NULL (default) sends none. Copied. */
  const char *response_information;
  /** Most subscriptions one session may hold; a SUBSCRIBE beyond gets a
   *  failure code for the extra filters (MQTT 5: 0x97 quota exceeded).
   *  Default 10000. 0 means no limit. */
  uint32_t max_subscriptions;
  /** Most levels in a topic name or filter. A deeper PUBLISH is refused
   *  (MQTT 5: 0x90) and not delivered; a deeper filter gets a failure code.
   *  Default 128. 0 means no limit. */
  uint32_t max_topic_levels;
  /** Payload bytes queued across all sessions. Beyond it, messages for
   *  sessions that would have to queue are dropped and counted. Default
   *  268435456 (256 MiB). 0 means no limit. */
  uint64_t max_queued_bytes_total;
  /** Bytes of unsent output a connection may hold before QoS 0 messages
   *  for it are dropped (QoS 1 and 2 wait in its queue instead). Default
   *  1048576. 0 means no limit. */
  uint64_t max_output_bytes;
  /** Milliseconds a connection's output may stay undrained (nothing
   *  acknowledged with ::mqttb_conn_output_ack) before the connection is
   *  closed with ::MQTTB_ERR_OUTPUT_STALLED. Default 60000. 0 disables. */
  uint32_t output_stall_timeout_ms;
  /** Key for the identifiers assigned to clients that send none: each is
   *  auto_id_prefix followed by a keyed hash (SipHash-2-4) of a counter, so
   *  that with a secret random key nobody can guess another client's
   *  identifier. The library has no random source: the embedder provides
   *  the key (mqttb reads it from the kernel). Default all zero, which gives
   *  the same identifiers in every run. */
  uint64_t auto_id_key[2];

  /* ---- version 2 ---- */

  /** Units of work one call of ::mqttb_conn_recv does before it holds the
   *  rest of the input back (a unit: a packet handled, a delivery to one
   *  session, a subscription filter, a retained message sent). The held
   *  input is processed by the next call (::mqttb_conn_input_pending tells
   *  how much is held; call ::mqttb_conn_recv with no new bytes to go on),
   *  so that an embedder serving connections in turn serves everyone while
   *  one client floods. A single packet is never split: a PUBLISH to
   *  100,000 subscribers is 100,000 units in one call. Default 1024. 0
   *  means no limit. */
  uint32_t work_budget;
  /** Largest packet accepted before a CONNECT is complete (the CONNECT
   *  itself, and AUTH packets of its exchange), in bytes including the
   *  fixed header; a larger one closes the connection before its body is
   *  buffered. Default 262144. 0 means max_packet_size. */
  uint32_t max_connect_size;
  /** Bytes of heap the broker may use through its allocator hooks (as
   *  Mosquitto's memory_limit). Past it every allocation fails as
   *  out-of-memory: MQTT 5 publishers get PUBACK/PUBREC 0x97 for what
   *  cannot be stored, QoS 0 messages are dropped and counted, other
   *  requests that need memory close their connection (MQTT 5: DISCONNECT
   *  0x97); the broker keeps serving within the limit. Each block then
   *  carries a 16-byte header. Default 0: no limit. */
  uint64_t memory_limit;
  /** Bytes of input all connections together may buffer (partial packets,
   *  and input held by the work budget); a connection whose packet would go
   *  past it is closed (MQTT 5: DISCONNECT 0x97). Default 536870912 (512
   *  MiB, room for two packets of the protocol's maximum size). 0 means no
   *  limit. */
  uint64_t max_input_bytes_total;
} mqttb_settings;

/**
 * @brief Fill @p settings with the defaults of this library version.
 *
 * Writes exactly the bytes of the struct as @p settings_version defines it;
 * nothing for an unknown version or a NULL @p settings.
 * @param settings_version ::MQTTB_SETTINGS_VERSION (or an earlier version).
 * @param settings the struct to fill.
 */
MQTTB_EXTERN void mqttb_settings_default_versioned(int settings_version, mqttb_settings *settings);

/** @brief Fill @p S with defaults; see ::mqttb_settings_default_versioned. */
#define mqttb_settings_default(S) mqttb_settings_default_versioned(MQTTB_SETTINGS_VERSION, (S))

/**
 * @brief Create a broker.
 *
 * @param pbroker receives the new broker on success; untouched on failure.
 * @param settings_version the version of @p settings (::MQTTB_SETTINGS_VERSION).
 * @param settings limits; copied (the prefix string too), as many bytes as
 *        @p settings_version has; fields of later versions take their
 *        defaults. NULL means defaults.
 * @param callbacks_version the version of @p callbacks
 *        (::MQTTB_CALLBACKS_VERSION).
 * @param callbacks copied, as many bytes as @p callbacks_version has;
 *        callbacks of later versions are NULL. NULL means no callbacks.
 * @param mem allocator hooks; copied. NULL means the C library's allocator.
 * @param user_data passed last to every callback.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p pbroker is NULL, or a hook in
 *         @p mem is NULL.
 * @retval MQTTB_ERR_VERSION unknown @p settings_version or
 *         @p callbacks_version.
 * @retval MQTTB_ERR_NOMEM out of memory.
 */
MQTTB_EXTERN int mqttb_broker_new_versioned(mqttb_broker **pbroker, int settings_version,
                                            const mqttb_settings *settings, int callbacks_version,
                                            const mqttb_callbacks *callbacks, const mqttb_mem *mem,
                                            void *user_data);

/** @brief Create a broker with this header's struct versions; see
 *  ::mqttb_broker_new_versioned. */
#define mqttb_broker_new(PB, SETTINGS, CALLBACKS, MEM, USER_DATA)                                  \
  mqttb_broker_new_versioned((PB), MQTTB_SETTINGS_VERSION, (SETTINGS), MQTTB_CALLBACKS_VERSION,    \
                             (CALLBACKS), (MEM), (USER_DATA))

/**
 * @brief Destroy a broker and everything it holds.
 *
 * All connections must have been deleted with ::mqttb_conn_del first.
 * Sessions, subscriptions and retained messages are freed.
 * @param broker may be NULL.
 */
MQTTB_EXTERN void mqttb_broker_del(mqttb_broker *broker);

/**
 * @brief The time (milliseconds, the embedder's clock) at which
 * ::mqttb_broker_handle_timers should be called next.
 *
 * Calling earlier is harmless: timers are checked lazily, so a deadline may
 * pass without anything being due.
 * @param broker the broker; NULL gives UINT64_MAX.
 * @return the deadline, or UINT64_MAX when no timer is pending.
 */
MQTTB_EXTERN uint64_t mqttb_broker_next_deadline(const mqttb_broker *broker);

/**
 * @brief Run every timer due at @p now.
 *
 * The timers are: each connection's connect timeout (no CONNECT within
 * connect_timeout_ms), keep-alive (nothing received for 1.5 times the
 * keep-alive) and output stall (output not drained within
 * output_stall_timeout_ms); each offline session's expiry (the session
 * ends, and a pending will is published) and MQTT 5 will delay (the will
 * is published); and the @c $SYS update every sys_interval_ms, which also
 * drops retained messages whose expiry passed. Connections that time out
 * get their on_close callback; MQTT 5 clients get a DISCONNECT first.
 * @param broker the broker.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p broker is NULL.
 */
MQTTB_EXTERN int mqttb_broker_handle_timers(mqttb_broker *broker, uint64_t now);

/**
 * @brief Broker-wide counters. Read with ::mqttb_broker_get_stats.
 */
typedef struct mqttb_stats {
  /** Bytes fed to ::mqttb_conn_recv since the broker started. */
  uint64_t bytes_received;
  /** Bytes acknowledged with ::mqttb_conn_output_ack. */
  uint64_t bytes_sent;
  /** MQTT packets of any type received. */
  uint64_t packets_received;
  /** MQTT packets of any type queued for sending. */
  uint64_t packets_sent;
  /** PUBLISH packets received (duplicates of QoS 2 included). */
  uint64_t publish_received;
  /** PUBLISH packets queued for sending (re-sends included). */
  uint64_t publish_sent;
  /** PUBLISH messages dropped because a session queue was full, or QoS 0
   *  messages for an offline session. */
  uint64_t publish_dropped;
  /** Clients connected now. */
  uint64_t clients_connected;
  /** Persistent sessions whose client is not connected. */
  uint64_t clients_disconnected;
  /** The most clients connected at once. */
  uint64_t clients_maximum;
  /** Retained messages held now. */
  uint64_t retained_count;
  /** Subscriptions held now, all sessions. */
  uint64_t subscription_count;
  /** Connection objects that exist now (connected or not). */
  uint64_t connections;
  /** Connections accepted since the broker started (CONNECT accepted). */
  uint64_t connects_total;
} mqttb_stats;

/**
 * @brief Copy the broker's counters into @p stats.
 * @param broker the broker.
 * @param stats_version the version of @p stats (::MQTTB_STATS_VERSION); only
 *        that version's bytes are written.
 * @param stats receives the counters.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 * @retval MQTTB_ERR_VERSION unknown @p stats_version.
 */
MQTTB_EXTERN int mqttb_broker_get_stats_versioned(const mqttb_broker *broker, int stats_version,
                                                  mqttb_stats *stats);

/** @brief Copy the counters into @p S, a ::mqttb_stats of this header's
 *  version; see ::mqttb_broker_get_stats_versioned. */
#define mqttb_broker_get_stats(B, S) mqttb_broker_get_stats_versioned((B), MQTTB_STATS_VERSION, (S))

/**
 * @brief Create a connection object for a new transport connection.
 *
 * The connection waits for CONNECT; if none arrives within the connect
 * timeout it is closed.
 * @param pconn receives the connection.
 * @param broker the broker it belongs to.
 * @param now the current time in milliseconds.
 * @param conn_user_data returned by ::mqttb_conn_get_user_data.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 * @retval MQTTB_ERR_TOO_MANY_CONNECTIONS the max_connections limit is reached.
 * @retval MQTTB_ERR_NOMEM out of memory.
 */
MQTTB_EXTERN int mqttb_conn_new(mqttb_conn **pconn, mqttb_broker *broker, uint64_t now,
                                void *conn_user_data);

/**
 * @brief Delete a connection object.
 *
 * If the broker had not closed it and ::mqttb_conn_transport_closed was not
 * called, this counts as transport loss: the will message is published.
 * Pending output is discarded. Must not be called from a callback.
 * @param conn may be NULL.
 * @param now the current time in milliseconds.
 */
MQTTB_EXTERN void mqttb_conn_del(mqttb_conn *conn, uint64_t now);

/**
 * @brief Feed bytes the peer sent.
 *
 * Input may be split at any byte and may hold many packets. All of @p len
 * is taken: an incomplete packet is buffered inside the connection, and
 * once the call has done settings.work_budget units of work the packets
 * left are held for the next call (see ::mqttb_conn_input_pending). Input
 * held by an earlier call is processed first. @p len may be 0 to go on
 * with held input only.
 * @param conn the connection.
 * @param len the number of bytes at @p in.
 * @param in the bytes (NULL when @p len is 0); borrowed for the duration
 *        of the call.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK the input was taken (processed, or held).
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 * @retval MQTTB_ERR_INVALID_STATE the connection is already closing; the
 *         input was discarded.
 * @retval "-500 to -599" the connection is now closing for the reason given;
 *         on_close has been called. Write any pending output, then close.
 */
MQTTB_EXTERN int mqttb_conn_recv(mqttb_conn *conn, const uint8_t *in, size_t len, uint64_t now);

/** @brief One contiguous piece of pending output. */
typedef struct mqttb_iovec {
  /** First byte; owned by the library. */
  const void *base;
  /** Number of bytes. */
  size_t len;
} mqttb_iovec;

/**
 * @brief Peek at pending output.
 *
 * Fills up to @p iovmax entries with the bytes to send, in order. The
 * pointed-to memory is owned by the library and stays valid until the next
 * call into the library that concerns this broker. Nothing is consumed
 * until ::mqttb_conn_output_ack.
 * @param conn the connection.
 * @param iov an array of at least @p iovmax entries.
 * @param iovmax the number of entries @p iov has room for.
 * @return the number of entries filled (0 when nothing is pending), or
 *         ::MQTTB_ERR_INVALID_ARGUMENT.
 */
MQTTB_EXTERN int mqttb_conn_output(mqttb_conn *conn, mqttb_iovec *iov, int iovmax);

/**
 * @brief Mark @p nbytes of pending output as written.
 * @param conn the connection.
 * @param nbytes bytes written, counted from the start of the pending output.
 * @param now the current time in milliseconds (progress restarts the
 *        output stall timeout).
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p nbytes is more than is pending.
 */
MQTTB_EXTERN int mqttb_conn_output_ack(mqttb_conn *conn, size_t nbytes, uint64_t now);

/**
 * @brief Bytes of output pending on the connection.
 * @param conn the connection; NULL gives 0.
 * @return the number of bytes ::mqttb_conn_output would expose in total.
 */
MQTTB_EXTERN size_t mqttb_conn_output_pending(const mqttb_conn *conn);

/**
 * @brief Bytes of input received but not yet processed.
 *
 * ::mqttb_conn_recv stops handling packets once the call has done
 * settings.work_budget units of work, and holds the rest of its input
 * (copied). While this is non-zero, call ::mqttb_conn_recv again with no
 * new bytes (@c in NULL, @c len 0), in turn with other connections, rather
 * than read more from this transport; bytes fed meanwhile are held after
 * the rest, in order.
 * @param conn the connection; NULL gives 0.
 * @return the bytes held; 0 once the connection is closing.
 */
MQTTB_EXTERN size_t mqttb_conn_input_pending(const mqttb_conn *conn);

/**
 * @brief Tell the broker the transport is gone (peer closed, I/O error).
 *
 * Publishes the will unless the client sent DISCONNECT. Later input is
 * refused. on_close is not called for this. Call ::mqttb_conn_del
 * afterwards.
 * @param conn the connection.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 */
MQTTB_EXTERN int mqttb_conn_transport_closed(mqttb_conn *conn, uint64_t now);

/**
 * @brief The pointer given to ::mqttb_conn_new.
 * @param conn the connection; NULL gives NULL.
 * @return the embedder's pointer.
 */
MQTTB_EXTERN void *mqttb_conn_get_user_data(const mqttb_conn *conn);

/**
 * @brief The client identifier of a connection.
 * @param conn the connection; NULL gives NULL.
 * @return the identifier, NUL-terminated, valid until the connection is
 *         deleted; NULL before a CONNECT was accepted.
 */
MQTTB_EXTERN const char *mqttb_conn_get_client_id(const mqttb_conn *conn);

/**
 * @brief The protocol level the client asked for.
 * @param conn the connection; NULL gives 0.
 * @return 3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5 (MQTT 5); 0 before CONNECT.
 */
MQTTB_EXTERN int mqttb_conn_get_protocol_level(const mqttb_conn *conn);

/**
 * @brief The keep-alive the client asked for.
 * @param conn the connection; NULL gives 0.
 * @return seconds; 0 when none, or before CONNECT.
 */
MQTTB_EXTERN int mqttb_conn_get_keepalive(const mqttb_conn *conn);

/**
 * @brief Whether the client asked for a clean session.
 * @param conn the connection; NULL gives 0.
 * @return 1 for clean session, else 0.
 */
MQTTB_EXTERN int mqttb_conn_get_clean_session(const mqttb_conn *conn);

/**
 * @brief The broker a connection belongs to.
 * @param conn the connection; NULL gives NULL.
 * @return the broker.
 */
MQTTB_EXTERN mqttb_broker *mqttb_conn_get_broker(const mqttb_conn *conn);

/**
 * @brief Set the Authentication Data of the next AUTH or CONNACK packet.
 *
 * Meant to be called from the authenticate callback during MQTT 5
 * enhanced authentication.
 * @param conn the connection.
 * @param data the bytes; copied. NULL clears.
 * @param len bytes at @p data (at most 65535).
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p conn is NULL or @p len too large.
 * @retval MQTTB_ERR_NOMEM out of memory.
 */
MQTTB_EXTERN int mqttb_conn_set_auth_data(mqttb_conn *conn, const uint8_t *data, size_t len);

/**
 * @brief Name another server for MQTT 5 redirection (Server Reference).
 *
 * Sent in the CONNACK when the authenticate callback returns
 * ::MQTTB_REASON_USE_ANOTHER_SERVER or ::MQTTB_REASON_SERVER_MOVED, and in
 * the DISCONNECT of ::mqttb_conn_disconnect.
 * @param conn the connection.
 * @param reference NUL-terminated; copied. NULL clears.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p conn is NULL.
 * @retval MQTTB_ERR_NOMEM out of memory.
 */
MQTTB_EXTERN int mqttb_conn_set_server_reference(mqttb_conn *conn, const char *reference);

/**
 * @brief Close a connection from the embedder's side.
 *
 * An MQTT 5 client gets a DISCONNECT with @p reason (and the Server
 * Reference, if one was set); an MQTT 3.x client is simply closed. The will
 * is published unless @p reason is ::MQTTB_REASON_NORMAL_DISCONNECTION.
 * on_close is called with ::MQTTB_ERR_SHUTDOWN. Must not be called from a
 * callback.
 * @param conn the connection.
 * @param reason an MQTT 5 DISCONNECT reason code, e.g.
 *        ::MQTTB_REASON_SERVER_SHUTTING_DOWN or ::MQTTB_REASON_SERVER_MOVED.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p conn is NULL.
 * @retval MQTTB_ERR_INVALID_STATE the connection is already closing.
 */
MQTTB_EXTERN int mqttb_conn_disconnect(mqttb_conn *conn, int reason, uint64_t now);

/**
 * @brief The library's version.
 * @return a static string, "X.Y.Z".
 */
MQTTB_EXTERN const char *mqttb_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MQTTB_MQTTB_H */
