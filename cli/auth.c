/*
 * mqttb CLI: authentication and authorisation from the password and ACL
 * files. See auth.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include "auth.h"

#include <string.h>

int mqttb_cli_auth_connect(const struct mqttb_cli_auth *a, const char *username, size_t ulen,
                           const uint8_t *password, size_t plen) {
  if (a->pw == NULL || username == NULL) {
    return a->allow_anonymous ? MQTTB_REASON_SUCCESS : MQTTB_REASON_NOT_AUTHORIZED_5;
  }
  /* An unknown user costs the same hash as a wrong password, and so does a
   * CONNECT without a password field, which is refused even for a user
   * whose password is empty (as Mosquitto). */
  static const uint8_t none[1] = {0};
  bool ok =
      mqttb_pwfile_check(a->pw, username, ulen, password ? password : none, password ? plen : 0);
  return ok && password != NULL ? MQTTB_REASON_SUCCESS : MQTTB_REASON_NOT_AUTHORIZED_5;
}

/* "$share/GROUP/FILTER" is checked as FILTER. */
static void strip_share(const char **topic, size_t *len) {
  static const char prefix[] = "$share/";
  size_t n = sizeof prefix - 1;
  if (*len > n && memcmp(*topic, prefix, n) == 0) {
    const char *slash = memchr(*topic + n, '/', *len - n);
    if (slash != NULL) {
      *len -= (size_t)(slash + 1 - *topic);
      *topic = slash + 1;
    }
  }
}

bool mqttb_cli_auth_allow(const struct mqttb_cli_auth *a, const char *client_id,
                          const char *username, mqttb_access access, const char *topic,
                          size_t len) {
  if (a->acl == NULL) {
    return true;
  }
  mqttb_acl_access what = MQTTB_ACL_READ;
  switch (access) {
  case MQTTB_ACCESS_PUBLISH:
    what = MQTTB_ACL_WRITE;
    break;
  case MQTTB_ACCESS_SUBSCRIBE:
    what = MQTTB_ACL_SUBSCRIBE;
    strip_share(&topic, &len);
    break;
  case MQTTB_ACCESS_READ:
    what = MQTTB_ACL_READ;
    break;
  }
  return mqttb_acl_check(a->acl, client_id ? client_id : "", username, topic, len, what);
}

int mqttb_cli_auth_load(struct mqttb_cli_auth *a, bool allow_anonymous, const char *password_file,
                        const char *acl_file, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->allow_anonymous = allow_anonymous;
  if (password_file != NULL && mqttb_pwfile_load(password_file, &a->pw, err, errlen) != 0) {
    a->pw = NULL;
    return -1;
  }
  if (acl_file != NULL && mqttb_acl_load(acl_file, &a->acl, err, errlen) != 0) {
    a->acl = NULL;
    mqttb_cli_auth_free(a);
    return -1;
  }
  return 0;
}

void mqttb_cli_auth_free(struct mqttb_cli_auth *a) {
  if (a->pw != NULL) {
    mqttb_pwfile_free(a->pw);
  }
  if (a->acl != NULL) {
    mqttb_acl_free(a->acl);
  }
  memset(a, 0, sizeof *a);
}
