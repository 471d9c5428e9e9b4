/* SPDX-License-Identifier: MIT */
/* mqttb's password and ACL file parsers on arbitrary bytes. The first byte
 * picks the parser; whatever loads is then used: an ACL is asked about the
 * file's own bytes as topic, client id and user name, a password file is
 * asked about a user and password taken from the input. Nothing may crash,
 * leak or read out of bounds; a refusal must come with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "passwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  char err[256] = "";
  if (data[0] & 1) {
    mqttb_acl *acl = NULL;
    if (mqttb_acl_load_buffer(text, len, "fuzz.acl", &acl, err, sizeof err) != 0) {
      if (acl != NULL || err[0] == '\0')
        abort();
      return 0;
    }
    /* Topics and names from the input itself. */
    char id[32], user[32];
    size_t n = len < 31 ? len : 31;
    memcpy(id, text, n);
    id[n] = '\0';
    memcpy(user, text + len - n, n);
    user[n] = '\0';
    static const char *topics[] = {"a/b", "$SYS/broker/uptime", "devices/user/x", "#", "+/+"};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
      (void)mqttb_acl_check(acl, id, user, topics[i], strlen(topics[i]), MQTTB_ACL_READ);
      (void)mqttb_acl_check(acl, id, NULL, topics[i], strlen(topics[i]), MQTTB_ACL_SUBSCRIBE);
    }
    (void)mqttb_acl_check(acl, id, user, text, len < 200 ? len : 200, MQTTB_ACL_WRITE);
    mqttb_acl_free(acl);
  } else {
    mqttb_pwfile *pf = NULL;
    if (mqttb_pwfile_load_buffer(text, len, "fuzz.pw", &pf, err, sizeof err) != 0) {
      if (pf != NULL || err[0] == '\0')
        abort();
      return 0;
    }
    size_t ulen = len < 16 ? len : 16;
    (void)mqttb_pwfile_check(pf, text, ulen, (const uint8_t *)text, len < 64 ? len : 64);
    (void)mqttb_pwfile_count(pf);
    mqttb_pwfile_free(pf);
  }
  return 0;
}
