/* SPDX-License-Identifier: MIT */
#include <mqttb/mqttb.h>

const char *mqttb_strerror(int err) {
  switch (err) {
  case MQTTB_OK:
    return "success";
  case MQTTB_ERR_INVALID_ARGUMENT:
    return "invalid argument";
  case MQTTB_ERR_NOMEM:
    return "out of memory";
  case MQTTB_ERR_INVALID_STATE:
    return "invalid state";
  case MQTTB_ERR_TOO_MANY_CONNECTIONS:
    return "too many connections";
  case MQTTB_ERR_VERSION:
    return "unknown struct version";
  case MQTTB_ERR_QUOTA:
    return "limit reached";
  case MQTTB_ERR_NOT_FOUND:
    return "not found";
  case MQTTB_ERR_STORE_CORRUPT:
    return "store record corrupt";
  case MQTTB_ERR_CLIENT_DISCONNECTED:
    return "client disconnected";
  case MQTTB_ERR_MALFORMED:
    return "malformed packet";
  case MQTTB_ERR_PROTOCOL:
    return "protocol error";
  case MQTTB_ERR_PACKET_TOO_LARGE:
    return "packet too large";
  case MQTTB_ERR_UNSUPPORTED_PROTOCOL:
    return "unsupported protocol version";
  case MQTTB_ERR_IDENTIFIER_REJECTED:
    return "client identifier rejected";
  case MQTTB_ERR_NOT_AUTHORIZED:
    return "not authorized";
  case MQTTB_ERR_KEEPALIVE_TIMEOUT:
    return "keep-alive timeout";
  case MQTTB_ERR_CONNECT_TIMEOUT:
    return "no CONNECT in time";
  case MQTTB_ERR_TAKEN_OVER:
    return "session taken over";
  case MQTTB_ERR_TRANSPORT_CLOSED:
    return "connection closed by peer";
  case MQTTB_ERR_CONN_NOMEM:
    return "out of memory serving the connection";
  case MQTTB_ERR_SHUTDOWN:
    return "broker shutting down";
  case MQTTB_ERR_SERVER_UNAVAILABLE:
    return "server unavailable";
  case MQTTB_ERR_OUTPUT_STALLED:
    return "client stopped reading (output stalled)";
  default:
    return "unknown error";
  }
}

int mqttb_err_is_fatal(int err) {
  return (err <= -500 && err >= -599) || (err <= -900 && err >= -999);
}
