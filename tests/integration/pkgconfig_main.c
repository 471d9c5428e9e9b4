/* SPDX-License-Identifier: MIT */
/* Built against an installed libmqttbroker by
 * tests/integration/test_install_pkgconfig.py, with pkg-config: one
 * connection sends a CONNECT and must get a CONNACK accepting it. Uses only
 * the public header. Exits non-zero on any failure. */
#include <stdio.h>
#include <string.h>

#include <mqttb/mqttb.h>

static void want_write(mqttb_conn *conn, void *user_data) {
  (void)conn;
  (void)user_data;
}

static void on_close(mqttb_conn *conn, int reason, void *user_data) {
  (void)conn;
  (void)reason;
  (void)user_data;
}

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

int main(void) {
  /* The header and the library agree on the version. */
  CHECK(strcmp(mqttb_version(), MQTTB_VERSION_STRING) == 0);

  mqttb_settings settings;
  mqttb_settings_default(&settings);
  mqttb_callbacks callbacks;
  memset(&callbacks, 0, sizeof(callbacks));
  callbacks.want_write = want_write;
  callbacks.on_close = on_close;

  mqttb_broker *broker = NULL;
  CHECK(mqttb_broker_new(&broker, &settings, &callbacks, NULL, NULL) == MQTTB_OK);
  mqttb_conn *conn = NULL;
  CHECK(mqttb_conn_new(&conn, broker, 0, NULL) == MQTTB_OK);

  /* MQTT 3.1.1 CONNECT, clean session, keep-alive 60 s, client id "it". */
  static const uint8_t connect[] = {0x10, 0x0e, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                                    0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 'i', 't'};
  CHECK(mqttb_conn_recv(conn, connect, sizeof(connect), 0) >= 0);

  /* CONNACK: session present 0, return code 0 (accepted). */
  mqttb_iovec iov[4];
  int n = mqttb_conn_output(conn, iov, 4);
  CHECK(n >= 1);
  CHECK(iov[0].len >= 4);
  const uint8_t *out = iov[0].base;
  CHECK(out[0] == 0x20 && out[1] == 0x02 && out[2] == 0x00 && out[3] == 0x00);
  CHECK(mqttb_conn_output_ack(conn, 4, 0) == MQTTB_OK);
  CHECK(mqttb_conn_output_pending(conn) == 0);
  CHECK(strcmp(mqttb_conn_get_client_id(conn), "it") == 0);

  CHECK(mqttb_conn_transport_closed(conn, 0) == MQTTB_OK);
  mqttb_conn_del(conn, 0);
  mqttb_broker_del(broker);
  printf("CONNECT accepted by libmqttbroker %s\n", mqttb_version());
  return 0;
}
