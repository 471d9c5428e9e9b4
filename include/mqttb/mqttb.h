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
 * One broker and all its connections belong to one thread at a time; two
 * brokers share nothing and may run on two threads.
 *
 * The application itself can publish and subscribe (::mqttb_broker_publish,
 * ::mqttb_broker_subscribe): the host API, through the same router as
 * network clients.
 *
 * @par Calls from inside callbacks
 * Callbacks run synchronously inside library calls. What a callback may call
 * is stated on each callback, in terms of these groups:
 * - the @b inspecting calls: every @c mqttb_conn_get_*,
 *   ::mqttb_conn_is_closing, ::mqttb_conn_output_pending,
 *   ::mqttb_conn_input_pending, ::mqttb_broker_next_deadline,
 *   ::mqttb_broker_timeout, ::mqttb_broker_get_stats, ::mqttb_strerror,
 *   ::mqttb_err_is_fatal, ::mqttb_version;
 * - the @b output calls, on any connection of the broker:
 *   ::mqttb_conn_output, ::mqttb_conn_output_ack;
 * - the @b host calls: ::mqttb_broker_publish, ::mqttb_broker_subscribe,
 *   ::mqttb_broker_unsubscribe.
 *
 * No callback may call ::mqttb_conn_new, ::mqttb_conn_recv,
 * ::mqttb_conn_transport_closed, ::mqttb_conn_disconnect, ::mqttb_conn_del,
 * ::mqttb_broker_handle_timers, ::mqttb_broker_reload_settings,
 * ::mqttb_broker_shutdown or ::mqttb_broker_del, on this broker. Those that return an error return
 * ::MQTTB_ERR_INVALID_STATE when called from a callback, and do nothing.
 *
 * @par Connection lifecycle
 * ::mqttb_conn_new, then input and output, until the connection closes:
 * the broker closes it (protocol error, DISCONNECT, timeout, takeover,
 * ::mqttb_conn_disconnect, ::mqttb_broker_shutdown), or the embedder reports
 * the transport gone (::mqttb_conn_transport_closed), or deletes it while it
 * is open (::mqttb_conn_del). Whichever comes first, on_close is called
 * exactly once, at that moment, and ::mqttb_conn_is_closing is 1 from then
 * on. The object stays valid until ::mqttb_conn_del (or ::mqttb_broker_del).
 *
 * @par Shutting down
 * ::mqttb_broker_shutdown (MQTT 5 clients get DISCONNECT 0x8B, every open
 * connection gets on_close), write each connection's pending output as far
 * as the transport takes it, ::mqttb_conn_del each, then
 * ::mqttb_broker_del. See docs/embedding.md.
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
/** There is no such thing (::mqttb_broker_unsubscribe: no such
 *  subscription); nothing changed. */
#define MQTTB_ERR_NOT_FOUND (-107)
/** A store record given to ::mqttb_broker_restore is malformed, of an
 *  unknown kind, or contradicts the records before it; nothing changed
 *  (the log line names what was wrong). */
#define MQTTB_ERR_STORE_CORRUPT (-108)

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
/** The broker closed the connection on the embedder's request
 *  (::mqttb_conn_disconnect, ::mqttb_broker_shutdown, or ::mqttb_broker_del
 *  with the connection still open). */
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
  MQTTB_ACCESS_SUBSCRIBE = 2,
  /** A message on a topic name is about to be sent to the client (only for
   *  callbacks of ::MQTTB_CALLBACKS_V2 and later). */
  MQTTB_ACCESS_READ = 3
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
   * inside any library call, including calls made on other connections and
   * in the middle of delivering a message to many sessions.
   *
   * May call: the inspecting calls and ::mqttb_conn_output (to peek). Note
   * the connection and write after the library call returns; the host and
   * output-acknowledging calls return ::MQTTB_ERR_INVALID_STATE here.
   */
  void (*want_write)(mqttb_conn *conn, void *user_data);
  /**
   * The broker wants this transport closed. @p reason is an
   * @c MQTTB_ERR_* code saying why (::MQTTB_ERR_CLIENT_DISCONNECTED for a
   * normal DISCONNECT, ::MQTTB_ERR_TRANSPORT_CLOSED when the embedder
   * reported the transport gone or deleted the open connection,
   * ::MQTTB_ERR_SHUTDOWN for ::mqttb_conn_disconnect and
   * ::mqttb_broker_shutdown). Output that is still pending (for example a
   * CONNACK carrying a refusal, or a DISCONNECT) should be written before
   * closing. The connection object stays valid until the embedder calls
   * ::mqttb_conn_del. Called exactly once per connection, whatever closed
   * it: from inside the library call that closed it, including
   * ::mqttb_conn_transport_closed, ::mqttb_conn_del of an open connection
   * and ::mqttb_broker_del.
   *
   * May call: the inspecting, output and host calls (on any connection).
   */
  void (*on_close)(mqttb_conn *conn, int reason, void *user_data);
  /**
   * A CONNECT was accepted and CONNACK queued: the connection now has a
   * client identifier (::mqttb_conn_get_client_id).
   *
   * May call: the inspecting, output and host calls.
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
   *
   * May call: the inspecting and host calls, and ::mqttb_conn_set_auth_data
   * and ::mqttb_conn_set_server_reference on @p conn.
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
   * acknowledged as the protocol requires but not delivered. A CONNECT's
   * will topic is asked about as a PUBLISH once the client is authenticated
   * (::mqttb_conn_get_client_id already gives its identifier); a refusal
   * refuses the connection (CONNACK 0x05, MQTT 5: the code). It is asked
   * again when the will is published as its connection closes (a refusal
   * then drops the will); a will delayed by MQTT 5's Will Delay Interval is
   * published later without asking. When NULL
   * everything is allowed. Messages the application publishes with
   * ::mqttb_broker_publish and host subscriptions are not asked about.
   *
   * ::MQTTB_ACCESS_READ (callbacks version 2 and later): a message on the
   * topic name @p topic, at @p qos with the @p retain flag it will carry, is
   * about to be sent to the client, live, from its queue, or retained after
   * a SUBSCRIBE. A non-zero return skips it (it is not counted as dropped).
   * This runs for every message sent to every client: keep it fast.
   *
   * May call: the inspecting and host calls; for ::MQTTB_ACCESS_READ (called
   * in the middle of deliveries) the inspecting calls only.
   */
  int (*authorize)(mqttb_conn *conn, mqttb_access access, const char *topic, size_t topic_len,
                   int qos, int retain, void *user_data);
  /** A log line, without a trailing newline; @p msg is valid only during
   *  the call. Called from anywhere, also in the middle of a delivery. May
   *  call: ::mqttb_strerror and ::mqttb_version only. */
  void (*log)(mqttb_broker *broker, mqttb_log_level level, const char *msg, void *user_data);
  /**
   * The current wall-clock time in seconds since the Unix epoch, for
   * @c $SYS/broker/time. The library reads no clock itself. When NULL that
   * topic is not published. May call nothing of the library.
   */
  int64_t (*wallclock)(void *user_data);
  /**
   * Bytes of heap in use, for @c $SYS/broker/heap/current. When NULL that
   * topic is not published. May call nothing of the library.
   */
  uint64_t (*heap_usage)(void *user_data);

  /* ---- version 3 ---- */

  /**
   * A durable change of state, as one store record (callbacks version 3
   * and later; see docs/persistence.md): a persistent session created,
   * changed or ended, a subscription of one added or removed, a message
   * accepted into its queue or in-flight window and its acknowledgement or
   * drop, an inbound QoS 2 packet identifier, a retained message set or
   * cleared. Keep the records in order; after a restart, hand them to
   * ::mqttb_broker_restore in the same order. @p seq numbers the records
   * of this broker 1, 2, 3, ... (see ::mqttb_broker_store_durable). The
   * record of an inbound QoS 1 or 2 PUBLISH comes before its PUBACK or
   * PUBREC is in the connection's output: an embedder that writes records
   * before it writes output loses nothing acknowledged when its process
   * dies. @p rec is valid only during the call. When NULL nothing is
   * recorded.
   *
   * Called from inside any library call, also in the middle of delivering
   * a message. May call: ::mqttb_strerror and ::mqttb_version only.
   */
  void (*store)(mqttb_broker *broker, uint64_t seq, const uint8_t *rec, size_t len,
                void *user_data);
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
/** The third version of ::mqttb_settings: adds store_sync and
 *  persistent_client_expiration. */
#define MQTTB_SETTINGS_V3 3
/** The version of ::mqttb_settings this header describes. */
#define MQTTB_SETTINGS_VERSION MQTTB_SETTINGS_V3
/** The first version of ::mqttb_callbacks. */
#define MQTTB_CALLBACKS_V1 1
/** The second version of ::mqttb_callbacks: the same members; authorize is
 *  also asked about every message sent to a client (::MQTTB_ACCESS_READ). */
#define MQTTB_CALLBACKS_V2 2
/** The third version of ::mqttb_callbacks: adds store. */
#define MQTTB_CALLBACKS_V3 3
/** The version of ::mqttb_callbacks this header describes. */
#define MQTTB_CALLBACKS_VERSION MQTTB_CALLBACKS_V3
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
   *  the key (mqttb reads it from the kernel). Default all zero: the key is
   *  then made from the broker's address in memory, so two brokers alive in
   *  one process at once assign different identifiers, but the identifiers
   *  are guessable. */
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

  /* ---- version 3 ---- */

  /** Group commit: when non-zero, acknowledgements that tell a client its
   *  request is durable (PUBACK, PUBREC and PUBCOMP of its QoS 1/2
   *  PUBLISH, SUBACK and UNSUBACK) are held back until the embedder reports
   *  with ::mqttb_broker_store_durable that every store record emitted
   *  before them is on stable storage; they are then sent, in order. One
   *  fsync then acknowledges everything that arrived meanwhile. Only
   *  acknowledgements that follow records wait. Default 0: acknowledgements
   *  go to the output at once (after the records). Reloadable. */
  int store_sync;
  /** Seconds an MQTT 3.x persistent session (clean session 0) is kept
   *  while its client is away, as Mosquitto's persistent_client_expiration.
   *  Default 0: for ever. MQTT 5 clients choose with their Session Expiry
   *  Interval. Reloadable (for sessions that connect afterwards). */
  uint32_t persistent_client_expiration;
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
 * @brief Change, while the broker runs, the settings that can change.
 *
 * Taken from @p settings: max_packet_size, max_inflight_messages,
 * max_queued_messages, max_queued_bytes, connect_timeout_ms, max_keepalive,
 * queue_qos0_messages, allow_zero_length_clientid, auto_id_prefix (copied),
 * retain_available, receive_maximum, max_subscriptions, max_topic_levels,
 * max_queued_bytes_total, max_output_bytes, output_stall_timeout_ms,
 * work_budget, max_connect_size, max_input_bytes_total; sys_interval_ms
 * from one non-zero value to another (the @c $SYS tree is made, or not, at
 * creation); memory_limit from one non-zero value to another (a limit is
 * set up, or not, at creation). Everything else keeps its value. The new
 * values apply from their next use on: a connected MQTT 5 client keeps the
 * limits its CONNACK announced, existing subscriptions and queued messages
 * stay. This is what a reload of a configuration file needs (Mosquitto
 * reloads the same options on SIGHUP).
 * @param broker the broker.
 * @param settings_version the version of @p settings.
 * @param settings the new settings, a complete struct
 *        (::mqttb_settings_default, then changes).
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 * @retval MQTTB_ERR_VERSION unknown @p settings_version.
 * @retval MQTTB_ERR_INVALID_STATE called from a callback.
 */
MQTTB_EXTERN int mqttb_broker_reload_settings_versioned(mqttb_broker *broker, int settings_version,
                                                        const mqttb_settings *settings);

/** @brief Reload @p S, a ::mqttb_settings of this header's version; see
 *  ::mqttb_broker_reload_settings_versioned. */
#define mqttb_broker_reload_settings(B, S)                                                         \
  mqttb_broker_reload_settings_versioned((B), MQTTB_SETTINGS_VERSION, (S))

/**
 * @brief Close every open connection: the first step of shutting down.
 *
 * Each connection that is not closing yet is closed as by
 * ::mqttb_conn_disconnect with ::MQTTB_REASON_SERVER_SHUTTING_DOWN: an MQTT 5
 * client gets a DISCONNECT with reason 0x8B (an MQTT 3.x client gets
 * nothing: its protocol has no such packet), its will is published as the
 * protocol says for a connection the server closes, and on_close is called
 * with ::MQTTB_ERR_SHUTDOWN. Connection objects are not freed: write their
 * pending output, then ::mqttb_conn_del each and ::mqttb_broker_del. From
 * then on ::mqttb_conn_new fails with ::MQTTB_ERR_INVALID_STATE. Host
 * subscriptions and sessions stay until ::mqttb_broker_del.
 * @param broker the broker.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p broker is NULL.
 * @retval MQTTB_ERR_INVALID_STATE called from a callback.
 */
MQTTB_EXTERN int mqttb_broker_shutdown(mqttb_broker *broker, uint64_t now);

/**
 * @brief Destroy a broker and everything it holds.
 *
 * Sessions, subscriptions (host subscriptions too) and retained messages
 * are freed. Connection objects that still exist are closed first, as
 * ::mqttb_broker_shutdown does (on_close is called for each that was not
 * closing yet), and then freed with their pending output: after this call
 * no connection pointer of this broker may be used. The orderly sequence is
 * in the file's description. Must not be called from a callback.
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
 * @brief The next deadline as a timeout for poll(2) or epoll_wait(2).
 *
 * @param broker the broker; NULL gives -1.
 * @param now the current time in milliseconds, on the clock given to the
 *        library.
 * @return -1 when no timer is pending (wait for ever), 0 when the deadline
 *         has passed (call ::mqttb_broker_handle_timers now), else the
 *         milliseconds until it, at most INT32_MAX.
 */
MQTTB_EXTERN int mqttb_broker_timeout(const mqttb_broker *broker, uint64_t now);

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
 * @defgroup store Durability: store records
 *
 * The broker reports each durable change of state as a record through the
 * store callback (see ::mqttb_callbacks), and is rebuilt from the records
 * by ::mqttb_broker_restore. It never writes files: keeping the records
 * (a journal, a database, flash) is the embedder's. The format is the
 * library's and is described in docs/persistence.md; records written by a
 * library version are read by every later one.
 *
 * Times in records (session expiry, message expiry, will delay) are wall
 * clock times taken from the wallclock callback, so expiries keep counting
 * while the broker is down. Without a wallclock callback they are kept as
 * the time that was left, and counting resumes at restore.
 * @{
 */

/**
 * @brief Apply one store record to a broker that is being rebuilt.
 *
 * Call with the records in the order they were emitted (a snapshot's, then
 * those emitted after it), before any connection is created, then call
 * ::mqttb_broker_restore_end. No records are emitted for what is restored.
 * A record that is malformed, of an unknown kind or inconsistent with the
 * records before it changes nothing and is refused; the records after it
 * may still be applied.
 * @param broker the broker.
 * @param rec the record, as the store callback gave it.
 * @param len its length.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK applied.
 * @retval MQTTB_ERR_STORE_CORRUPT refused (logged with what was wrong).
 * @retval MQTTB_ERR_INVALID_STATE a connection exists, restore ended, or
 *         called from a callback.
 * @retval MQTTB_ERR_NOMEM out of memory; nothing changed.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 */
MQTTB_EXTERN int mqttb_broker_restore(mqttb_broker *broker, const uint8_t *rec, size_t len,
                                      uint64_t now);

/**
 * @brief End the restore: rebuild the restored sessions' queues and
 * in-flight windows, start their expiry, drop what nothing refers to.
 *
 * Sessions whose client was connected when the records were written come
 * back offline, their expiry counting from @p now. After this call (which
 * is also implied by the first ::mqttb_conn_new) the broker serves as
 * usual and ::mqttb_broker_restore is refused.
 * @param broker the broker.
 * @param now the current time in milliseconds.
 * @return the number of sessions restored (>= 0), or
 * @retval MQTTB_ERR_NOMEM out of memory (what could be rebuilt is kept).
 * @retval MQTTB_ERR_INVALID_STATE called from a callback.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p broker is NULL.
 */
MQTTB_EXTERN int mqttb_broker_restore_end(mqttb_broker *broker, uint64_t now);

/** @brief Receives one record of a snapshot; non-zero stops it. */
typedef int (*mqttb_record_cb)(const uint8_t *rec, size_t len, void *user_data);

/**
 * @brief Emit the smallest set of records that rebuilds the broker's
 * durable state as it is now.
 *
 * For compaction: the records emitted through the store callback after this
 * call, applied after the snapshot's, rebuild the state of that later
 * moment. Every message is in it once however many sessions hold it. Only
 * reads the broker, so it may run in a forked copy of the process (as
 * mqttb does, so that writing a large snapshot never stalls its clients).
 * @param broker the broker.
 * @param cb called for each record, in order.
 * @param user_data passed to @p cb.
 * @return MQTTB_OK, or the non-zero value @p cb returned to stop.
 * @retval MQTTB_ERR_NOMEM out of memory.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 */
MQTTB_EXTERN int mqttb_broker_snapshot(mqttb_broker *broker, mqttb_record_cb cb, void *user_data);

/**
 * @brief The sequence number of the last store record emitted.
 * @param broker the broker; NULL gives 0.
 * @return the sequence number, 0 when none was emitted yet.
 */
MQTTB_EXTERN uint64_t mqttb_broker_store_seq(const mqttb_broker *broker);

/**
 * @brief Report that every store record up to @p seq is on stable storage.
 *
 * With the store_sync setting, acknowledgements held for those records go
 * to their connections' output now (want_write is called for each). Without
 * it this only records the number. A @p seq beyond ::mqttb_broker_store_seq
 * is taken as that.
 * @param broker the broker.
 * @param seq the last durable record.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_STATE called from a callback.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p broker is NULL.
 */
MQTTB_EXTERN int mqttb_broker_store_durable(mqttb_broker *broker, uint64_t seq, uint64_t now);
/** @} */

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
 * If the connection was still open (neither the broker nor
 * ::mqttb_conn_transport_closed closed it), this counts as transport loss:
 * the will message is published and on_close is called with
 * ::MQTTB_ERR_TRANSPORT_CLOSED before the object is freed. Pending output is
 * discarded. Must not be called from a callback.
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
 * with held input only. When a packet closes the connection (DISCONNECT, or
 * an error), the bytes after it are discarded: on a stream that carries one
 * session after another (a serial line), feed at most one packet at a time
 * and keep the rest for the next connection object.
 * @param conn the connection.
 * @param len the number of bytes at @p in.
 * @param in the bytes (NULL when @p len is 0); borrowed for the duration
 *        of the call.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK the input was taken (processed, or held).
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 * @retval MQTTB_ERR_INVALID_STATE the connection is already closing (the
 *         input was discarded), or called from a callback.
 * @retval "-500 to -599" the connection is now closing for the reason given;
 *         on_close has been called. Write any pending output, then close.
 */
MQTTB_EXTERN int mqttb_conn_recv(mqttb_conn *conn, const uint8_t *in, size_t len, uint64_t now);

/** @brief A piece of memory the library lends for input
 * (::mqttb_conn_recv_buffers). Has the layout of <tt>struct iovec</tt> on
 * POSIX systems, as ::mqttb_iovec has. */
typedef struct mqttb_inbuf {
  /** Where input may be written; owned by the library. */
  void *base;
  /** Room there, in bytes. */
  size_t len;
} mqttb_inbuf;

/**
 * @brief Where the next input can go without a copy.
 *
 * While the connection is in the middle of a large PUBLISH (4 KiB or more)
 * whose body is not all in, the library holds the block that will become
 * the message, and the rest of the packet can be read straight into it.
 * Then this fills @p bufs: first the rest of that packet, then, when
 * @p max allows, pairs of (fixed header, body) for more packets of the same
 * size, which is what a stream of large messages usually holds next: twice
 * as many as the last read reached, from 2 up to 64 of them and 256 KiB in
 * all (at most 129 entries are filled). When the last input ended just
 * after such a packet, read into these entries, the pairs are offered
 * without a packet in progress (@p max of 2 or more), so that a stream read
 * a whole number of packets at a time stays on this path. Read into them
 * in order, for example with readv(2) and a buffer of your own as the last
 * entry, then call ::mqttb_conn_recv_commit with the number of bytes that
 * went into them, and feed anything beyond to ::mqttb_conn_recv as usual.
 * Input that turns out not to be the packet expected is processed as if it
 * had been fed to ::mqttb_conn_recv, so any input is correct there. The
 * payloads then go from the transport to every subscriber without a copy
 * by the library.
 *
 * Returns 0 (use ::mqttb_conn_recv) when there is no such packet, while
 * input is held (::mqttb_conn_input_pending), and once the connection is
 * closing. The memory offered stays valid until the next call into the
 * library that concerns this connection. Not an inspecting call (it may
 * allocate the blocks it offers): it must not be called from a callback.
 * @param conn the connection.
 * @param bufs an array of at least @p max entries.
 * @param max entries @p bufs has room for; 1 offers the rest of the
 *        packet only, 3 or more also the packets expected after it (2 or
 *        more between packets).
 * @return the entries filled (0: none), ::MQTTB_ERR_INVALID_ARGUMENT, or
 *         ::MQTTB_ERR_INVALID_STATE from a callback.
 */
MQTTB_EXTERN int mqttb_conn_recv_buffers(mqttb_conn *conn, mqttb_inbuf *bufs, int max);

/**
 * @brief Take @p n bytes written into the memory ::mqttb_conn_recv_buffers
 *        offered, filling its entries in order.
 *
 * The same as feeding those bytes to ::mqttb_conn_recv, without the copy.
 * No other call into the library may come between the two.
 * @param conn the connection.
 * @param n bytes written, at most the entries' total.
 * @param now the current time in milliseconds.
 * @return as ::mqttb_conn_recv; ::MQTTB_ERR_INVALID_ARGUMENT when @p n is
 *         more than was offered.
 */
MQTTB_EXTERN int mqttb_conn_recv_commit(mqttb_conn *conn, size_t n, uint64_t now);

/** @brief One contiguous piece of pending output.
 *
 * On POSIX systems it has the layout of <tt>struct iovec</tt> (the library
 * checks this with a static assertion when it is built), so an array of
 * them can be passed to writev(2) or sendmsg(2) as it is:
 * <tt>writev(fd, (const struct iovec *)iov, n)</tt>. */
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
 * @brief Say that input for a connection still to send CONNECT is waiting
 *        in the transport and will be fed later.
 *
 * For an embedder that paces the connections still to authenticate
 * (password checks are costly, and a flood of CONNECTs should not keep the
 * connected clients waiting): such a client did send in time, so until the
 * next ::mqttb_conn_recv for it the connection is not closed for
 * settings.connect_timeout_ms, and that call starts the timeout again. Has
 * no effect once the connection is past CONNECT.
 * @param conn the connection.
 * @retval MQTTB_OK done.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p conn is NULL.
 * @retval MQTTB_ERR_INVALID_STATE the connection is closing, or called from
 *         a callback.
 */
MQTTB_EXTERN int mqttb_conn_input_deferred(mqttb_conn *conn);

/**
 * @brief Tell the broker the transport is gone (peer closed, I/O error).
 *
 * Publishes the will unless the client sent DISCONNECT. Later input is
 * refused. If the connection was not closing yet, on_close is called now
 * with ::MQTTB_ERR_TRANSPORT_CLOSED. Call ::mqttb_conn_del afterwards.
 * @param conn the connection.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success (also when the connection was closing already).
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 * @retval MQTTB_ERR_INVALID_STATE called from a callback.
 */
MQTTB_EXTERN int mqttb_conn_transport_closed(mqttb_conn *conn, uint64_t now);

/**
 * @brief The pointer given to ::mqttb_conn_new.
 * @param conn the connection; NULL gives NULL.
 * @return the embedder's pointer.
 */
MQTTB_EXTERN void *mqttb_conn_get_user_data(const mqttb_conn *conn);

/**
 * @brief Whether a connection is closing.
 *
 * 1 from the moment on_close is called for it (the broker closed it, or
 * the transport was reported gone) until it is deleted: it takes no more
 * input; write what ::mqttb_conn_output still holds, then close the
 * transport and call ::mqttb_conn_del.
 * @param conn the connection; NULL gives 1.
 * @return 1 when closing, 0 while open.
 */
MQTTB_EXTERN int mqttb_conn_is_closing(const mqttb_conn *conn);

/**
 * @brief The client identifier of a connection.
 * @param conn the connection; NULL gives NULL.
 * @return the identifier, NUL-terminated, valid until the connection is
 *         deleted; NULL until its CONNECT has been authenticated (the
 *         authorize callback for the will topic sees it).
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
 * Reference, if one was set). An MQTT 3.x client gets no packet at all (its
 * protocol has no server DISCONNECT): it only sees the transport close. The
 * will is published unless @p reason is
 * ::MQTTB_REASON_NORMAL_DISCONNECTION. on_close is called with
 * ::MQTTB_ERR_SHUTDOWN. Write the pending output, then close the transport
 * and ::mqttb_conn_del.
 * @param conn the connection.
 * @param reason an MQTT 5 DISCONNECT reason code, e.g.
 *        ::MQTTB_REASON_SERVER_SHUTTING_DOWN or ::MQTTB_REASON_SERVER_MOVED.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT @p conn is NULL.
 * @retval MQTTB_ERR_INVALID_STATE the connection is already closing, or
 *         called from a callback.
 */
MQTTB_EXTERN int mqttb_conn_disconnect(mqttb_conn *conn, int reason, uint64_t now);

/**
 * @defgroup host The application as a client
 *
 * The application publishes into its broker and subscribes callbacks to
 * topic filters, through the same router as network clients: a message
 * the application publishes reaches network subscribers, and a host
 * subscription receives what network clients (and the application)
 * publish, retained messages and wills included.
 *
 * A host subscriber is a pair (callback, user data). It is not a session:
 * it has no client identifier, cannot be taken over, is not counted as a
 * client (nor against max_connections), and is never asked about by the
 * authenticate and authorize callbacks. Its subscriptions are counted in
 * the subscription figures (@c $SYS/broker/subscriptions/count). Like an
 * MQTT session, one subscriber gets one copy of a message however many of
 * its filters match it, at the highest QoS among them.
 *
 * @par Delivery and re-entrancy
 * A host subscriber is called when the library call that routed the
 * message is about to return, after every network session got its copy.
 * It may call the inspecting, output and host calls. A message it
 * publishes is routed at once to network sessions, and reaches host
 * subscribers after the current callback returns, in the order published
 * (there is no recursion). A subscriber that republishes what it receives
 * can loop: a message published from deliveries nested more than
 * ::MQTTB_HOST_MAX_DEPTH deep is refused with ::MQTTB_ERR_QUOTA. Once a
 * subscriber's last subscription is removed, it is not called again, even
 * for messages already routed to it.
 * @{
 */

/** How deep messages published from inside host deliveries may nest. */
#define MQTTB_HOST_MAX_DEPTH 16

/** @brief An MQTT 5 user property (a name/value pair of UTF-8 strings). */
typedef struct mqttb_user_property {
  /** The name; not NUL-terminated in a delivered message. */
  const char *name;
  /** Bytes in @c name. */
  size_t name_len;
  /** The value; not NUL-terminated in a delivered message. */
  const char *value;
  /** Bytes in @c value. */
  size_t value_len;
} mqttb_user_property;

/**
 * @brief A message: what ::mqttb_broker_publish publishes, and the view a
 * host subscriber receives.
 *
 * Publishing: zero the struct (all properties absent), then set fields.
 * Everything is copied; nothing needs to outlive the call. The properties
 * reach MQTT 5 subscribers as if an MQTT 5 client had published them;
 * MQTT 3.x subscribers get topic and payload only.
 *
 * Delivered: every pointer is borrowed from the broker and valid only
 * during the callback (copy what must outlive it). Strings are not
 * NUL-terminated; use the lengths. Absent properties are NULL (strings,
 * data), 0 (payload format, counts) or has_message_expiry 0.
 *
 * The struct only ever grows at the end (::MQTTB_MESSAGE_VERSION).
 */
typedef struct mqttb_message {
  /** The topic name: no wildcards, not empty, valid UTF-8. */
  const char *topic;
  /** Bytes in @c topic. When publishing, 0 means @c topic is
   *  NUL-terminated. */
  size_t topic_len;
  /** The payload (may be NULL when @c payload_len is 0). */
  const void *payload;
  /** Bytes in @c payload, at most 268435455 minus the topic's share. */
  size_t payload_len;
  /** QoS 0, 1 or 2. Delivered: the QoS of this delivery (the lower of
   *  the message's and the subscription's). */
  int qos;
  /** Publishing: 1 to store it as the topic's retained message (an empty
   *  payload clears it). Delivered: 1 for a retained message sent because
   *  of the subscription, or kept by Retain As Published. */
  int retain;
  /** MQTT 5 Payload Format Indicator: 0 (unspecified bytes) or 1 (UTF-8;
   *  the payload is then checked when publishing). */
  int payload_format;
  /** Whether @c message_expiry is set. */
  int has_message_expiry;
  /** MQTT 5 Message Expiry Interval, seconds. Delivered: what is left of
   *  it. */
  uint32_t message_expiry;
  /** MQTT 5 Content Type, or NULL. */
  const char *content_type;
  /** Bytes in @c content_type. */
  size_t content_type_len;
  /** MQTT 5 Response Topic (a topic name), or NULL. */
  const char *response_topic;
  /** Bytes in @c response_topic. */
  size_t response_topic_len;
  /** MQTT 5 Correlation Data (binary), or NULL. */
  const uint8_t *correlation_data;
  /** Bytes in @c correlation_data. */
  size_t correlation_data_len;
  /** MQTT 5 User Properties, in order, or NULL. */
  const mqttb_user_property *user_properties;
  /** Entries in @c user_properties. */
  size_t user_property_count;
} mqttb_message;

/** The first version of ::mqttb_message. */
#define MQTTB_MESSAGE_V1 1
/** The version of ::mqttb_message this header describes. */
#define MQTTB_MESSAGE_VERSION MQTTB_MESSAGE_V1

/**
 * @brief Publish a message from the application.
 *
 * Routed like a network client's PUBLISH (retained store, every matching
 * session and host subscriber, shared groups), with the application as the
 * publisher: not asked about by the authorize callback, and not delivered
 * to host subscriptions made with ::MQTTB_SUBOPT_NO_LOCAL. The topic may lie
 * in @c $SYS (the application owns the broker). A retained message is not
 * stored when settings.retain_available is 0.
 * @param broker the broker.
 * @param message_version the version of @p msg (::MQTTB_MESSAGE_VERSION).
 * @param msg the message; copied.
 * @param now the current time in milliseconds.
 * @return the number of sessions and host subscribers it was delivered to
 *         (0 or more), or an error:
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument; a topic that is empty,
 *         has wildcards, is not UTF-8, is longer than 65535 bytes or deeper
 *         than max_topic_levels; QoS above 2; a payload format of 1 with a
 *         payload that is not UTF-8; a response topic that is not a topic
 *         name; a message larger than the protocol can carry.
 * @retval MQTTB_ERR_VERSION unknown @p message_version.
 * @retval MQTTB_ERR_INVALID_STATE called from want_write (in the middle of
 *         a delivery), or during ::mqttb_broker_del.
 * @retval MQTTB_ERR_QUOTA published from host deliveries nested
 *         ::MQTTB_HOST_MAX_DEPTH deep.
 * @retval MQTTB_ERR_NOMEM out of memory (or memory_limit); nothing was
 *         delivered.
 */
MQTTB_EXTERN int mqttb_broker_publish_versioned(mqttb_broker *broker, int message_version,
                                                const mqttb_message *msg, uint64_t now);

/** @brief Publish @p MSG, a ::mqttb_message of this header's version; see
 *  ::mqttb_broker_publish_versioned. */
#define mqttb_broker_publish(B, MSG, NOW)                                                          \
  mqttb_broker_publish_versioned((B), MQTTB_MESSAGE_VERSION, (MSG), (NOW))

/**
 * @brief A host subscriber's callback.
 *
 * Called once the library call that routed the message is about to return
 * (see the group's description). May call: the inspecting, output and host
 * calls.
 * @param broker the broker.
 * @param msg the message, borrowed for the duration of the call.
 * @param user_data the pointer given to ::mqttb_broker_subscribe.
 */
typedef void (*mqttb_message_cb)(mqttb_broker *broker, const mqttb_message *msg, void *user_data);

/**
 * @defgroup subopts Host subscription options
 * Or-ed into the @c options of ::mqttb_broker_subscribe; the bits are those
 * of the MQTT 5 subscription options byte.
 * @{
 */
/** Maximum QoS 0 (the default). */
#define MQTTB_SUBOPT_QOS0 0x00
/** Maximum QoS 1. */
#define MQTTB_SUBOPT_QOS1 0x01
/** Maximum QoS 2. */
#define MQTTB_SUBOPT_QOS2 0x02
/** Not messages the application published (::mqttb_broker_publish). */
#define MQTTB_SUBOPT_NO_LOCAL 0x04
/** Keep the retain flag of messages as they were published. */
#define MQTTB_SUBOPT_RETAIN_AS_PUBLISHED 0x08
/** Retained messages only when the subscription is new. */
#define MQTTB_SUBOPT_RETAIN_IF_NEW 0x10
/** No retained messages on subscribing. */
#define MQTTB_SUBOPT_RETAIN_NONE 0x20
/** @} */

/**
 * @brief Subscribe a callback to a topic filter.
 *
 * The filter may have wildcards and may be a shared subscription
 * (<tt>$share/group/filter</tt>), in a group with network clients. Subscribing
 * the same (@p cb, @p user_data) to the same filter again replaces its
 * options, as an MQTT SUBSCRIBE does. Retained messages matching the filter
 * are delivered (unless the options say otherwise) before this call
 * returns, unless it is made from inside a callback, in which case they
 * come after that callback returns.
 * @param broker the broker.
 * @param filter the topic filter, NUL-terminated.
 * @param options the MQTTB_SUBOPT_* flags.
 * @param cb called for each message.
 * @param user_data passed to @p cb.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK success.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument, an invalid filter (or
 *         one deeper than max_topic_levels, or a wildcard or shared filter
 *         when the settings turn those off), unknown option bits.
 * @retval MQTTB_ERR_INVALID_STATE called from want_write, or during
 *         ::mqttb_broker_del.
 * @retval MQTTB_ERR_NOMEM out of memory; nothing changed.
 */
MQTTB_EXTERN int mqttb_broker_subscribe(mqttb_broker *broker, const char *filter, int options,
                                        mqttb_message_cb cb, void *user_data, uint64_t now);

/**
 * @brief Remove a host subscription.
 * @param broker the broker.
 * @param filter the filter as given to ::mqttb_broker_subscribe.
 * @param cb the callback it was made with.
 * @param user_data the pointer it was made with.
 * @param now the current time in milliseconds.
 * @retval MQTTB_OK removed.
 * @retval MQTTB_ERR_NOT_FOUND no such subscription.
 * @retval MQTTB_ERR_INVALID_ARGUMENT a NULL argument.
 * @retval MQTTB_ERR_INVALID_STATE called from want_write, or during
 *         ::mqttb_broker_del.
 */
MQTTB_EXTERN int mqttb_broker_unsubscribe(mqttb_broker *broker, const char *filter,
                                          mqttb_message_cb cb, void *user_data, uint64_t now);
/** @} */

/**
 * @brief The library's version.
 * @return a static string, "X.Y.Z".
 */
MQTTB_EXTERN const char *mqttb_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MQTTB_MQTTB_H */
