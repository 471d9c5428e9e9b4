/* SPDX-License-Identifier: MIT */
/* The parent project's own program: a CONNECT must be accepted. */
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

int main(void) {
  mqttb_settings settings;
  mqttb_settings_default(&settings);
  mqttb_callbacks callbacks;
  memset(&callbacks, 0, sizeof(callbacks));
  callbacks.want_write = want_write;
  callbacks.on_close = on_close;

  mqttb_broker *broker;
  mqttb_conn *conn;
  if (mqttb_broker_new(&broker, &settings, &callbacks, NULL, NULL) != MQTTB_OK)
    return 1;
  if (mqttb_conn_new(&conn, broker, 0, NULL) != MQTTB_OK)
    return 1;
  static const uint8_t connect[] = {0x10, 0x0e, 0x00, 0x04, 'M',  'Q',  'T', 'T',
                                    0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 'p', 'p'};
  mqttb_iovec iov[1];
  int ok = mqttb_conn_recv(conn, connect, sizeof(connect), 0) >= 0 &&
           mqttb_conn_output(conn, iov, 1) == 1 && iov[0].len == 4 &&
           memcmp(iov[0].base, "\x20\x02\x00\x00", 4) == 0;
  mqttb_conn_del(conn, 0);
  mqttb_broker_del(broker);
  printf("%s\n", ok ? "CONNACK received" : "no CONNACK");
  return ok ? 0 : 1;
}
