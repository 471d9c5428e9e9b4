/*
 * mqttb CLI: who may connect, and what they may do. One mqttb_cli_auth per
 * set of security options: the whole broker's, or one listener's with
 * per_listener_settings true (as in Mosquitto). A reload builds new ones
 * and swaps them in; connections look theirs up at each check, so the new
 * rules apply from a client's next packet on.
 *
 * The rules, as Mosquitto 2's:
 * - No password_file: a client is accepted when allow_anonymous is true,
 *   refused otherwise, whatever user name it gives.
 * - A password_file: a client giving a user name must give that user's
 *   password; a client giving none is accepted when allow_anonymous is
 *   true. A refusal is CONNACK 0x05 (MQTT 5: 0x87), the same for an
 *   unknown user and a wrong password, which cost the same hashing.
 * - No acl_file: every client may publish and subscribe to everything. An
 *   acl_file: only what it grants (writes on PUBLISH and for the will,
 *   subscriptions on SUBSCRIBE, reads as each message is sent).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_AUTH_H
#define MQTTB_CLI_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mqttb/mqttb.h>

#include "acl.h"
#include "passwd.h"

struct mqttb_cli_auth {
  bool allow_anonymous;
  mqttb_pwfile *pw; /* NULL: no password_file */
  mqttb_acl *acl;   /* NULL: no acl_file */
};

/* A CONNECT's credentials: MQTTB_REASON_SUCCESS, or the MQTT 5 reason to
 * refuse with (the library maps it for MQTT 3.x). */
int mqttb_cli_auth_connect(const struct mqttb_cli_auth *a, const char *username, size_t ulen,
                           const uint8_t *password, size_t plen);

/* Whether a client (username NULL: anonymous) may do access on topic. */
bool mqttb_cli_auth_allow(const struct mqttb_cli_auth *a, const char *client_id,
                          const char *username, mqttb_access access, const char *topic, size_t len);

/* Load the files named; on failure nothing is kept and err says which file
 * and line. 0 or -1. */
int mqttb_cli_auth_load(struct mqttb_cli_auth *a, bool allow_anonymous, const char *password_file,
                        const char *acl_file, char *err, size_t errlen);
void mqttb_cli_auth_free(struct mqttb_cli_auth *a);

#endif /* MQTTB_CLI_AUTH_H */
