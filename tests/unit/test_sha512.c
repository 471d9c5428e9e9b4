/* SPDX-License-Identifier: MIT */
/* cli/sha512.c against published vectors: SHA-512 (FIPS 180-4 examples and
 * the NIST "one million a"), HMAC-SHA-512 (RFC 4231 test cases 1-7),
 * PBKDF2-HMAC-SHA-512 (the usual "password"/"salt" vectors, as computed by
 * Python's hashlib.pbkdf2_hmac) and base64 (RFC 4648 section 10), plus strict
 * base64 rejection and the constant-time comparison. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/sha512.h"

static void hex(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    snprintf(out + 2 * i, 3, "%02x", p[i]);
  }
  out[2 * n] = '\0';
}

static void assert_sha512(const void *msg, size_t len, const char *want) {
  uint8_t d[64];
  char h[129];
  mqttb_sha512(msg, len, d);
  hex(d, sizeof d, h);
  cr_assert(eq(str, h, (char *)want), "SHA-512 of %zu bytes", len);
}

Test(sha512, empty_message) {
  assert_sha512("", 0,
                "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

/* FIPS 180-4 example "SHA512.pdf": one-block message. */
Test(sha512, abc) {
  assert_sha512("abc", 3,
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

Test(sha512, fips_448_bit_message) {
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  assert_sha512(m, strlen(m),
                "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
                "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445");
}

/* FIPS 180-4 example: two-block message. */
Test(sha512, fips_896_bit_message) {
  const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  cr_assert(eq(sz, strlen(m), 112));
  assert_sha512(m, strlen(m),
                "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
}

Test(sha512, one_million_a_streamed_in_uneven_chunks) {
  const char *want = "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
                     "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b";
  static char a[1000000];
  memset(a, 'a', sizeof a);
  assert_sha512(a, sizeof a, want);

  /* The same through update() in chunk sizes that straddle block ends. */
  mqttb_sha512_ctx ctx;
  mqttb_sha512_init(&ctx);
  size_t done = 0, step = 1;
  while (done < sizeof a) {
    size_t n = step < sizeof a - done ? step : sizeof a - done;
    mqttb_sha512_update(&ctx, a + done, n);
    done += n;
    step = step * 7 % 301 + 1;
  }
  uint8_t d[64];
  char h[129];
  mqttb_sha512_final(&ctx, d);
  hex(d, sizeof d, h);
  cr_assert(eq(str, h, (char *)want));
}

/* Lengths around the padding edge (a length field needs 16 bytes, so 111 is
 * the longest one-block tail and 112 the shortest two-block one). Digests
 * from Python's hashlib.sha512(b"a" * n). */
Test(sha512, padding_boundaries) {
  static const struct {
    size_t n;
    const char *want;
  } v[] = {
      {111, "fa9121c7b32b9e01733d034cfc78cbf67f926c7ed83e82200ef86818196921760b4beff48404df811"
            "b953828274461673c68d04e297b0eb7b2b4d60fc6b566a2"},
      {112, "c01d080efd492776a1c43bd23dd99d0a2e626d481e16782e75d54c2503b5dc32bd05f0f1ba33e568b"
            "88fd2d970929b719ecbb152f58f130a407c8830604b70ca"},
      {127, "828613968b501dc00a97e08c73b118aa8876c26b8aac93df128502ab360f91bab50a51e088769a5c1"
            "eff4782ace147dce3642554199876374291f5d921629502"},
      {128, "b73d1929aa615934e61a871596b3f3b33359f42b8175602e89f7e06e5f658a243667807ed300314b9"
            "5cacdd579f3e33abdfbe351909519a846d465c59582f321"},
      {129, "4f681e0bd53cda4b5a2041cc8a06f2eabde44fb16c951fbd5b87702f07aeab611565b19c47fde3058"
            "7177ebb852e3971bbd8d3fd30da18d71037dfbd98420429"},
      {239, "52c853cb8d907f3d4d6b889beb027985d7c273486d75f8baf26f80d24e90c74c6c3de3e2213158238"
            "0a7d14d43f2941a31385439cd6ddc469f628015e50bf286"},
      {240, "4c296d90c61052a62ffb1dd196f1b7b09373b1f93e71836baebf89690546b7595684dbe9467a8e484"
            "fa0d1094272b4344a7c24f5fee8daedeb0bf549c985ab5f"},
      {256, "6a9169eb662f136d87374070e8828b3e615a7eca32a89446e9225b02832709be095e635c824a2bb70"
            "213ba2ea0ababac0809827843992c851903b7ac0c136699"},
  };
  char a[256];
  memset(a, 'a', sizeof a);
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    assert_sha512(a, v[i].n, v[i].want);
    /* Byte by byte gives the same. */
    mqttb_sha512_ctx ctx;
    mqttb_sha512_init(&ctx);
    for (size_t j = 0; j < v[i].n; j++) {
      mqttb_sha512_update(&ctx, a + j, 1);
    }
    uint8_t d[64];
    char h[129];
    mqttb_sha512_final(&ctx, d);
    hex(d, sizeof d, h);
    cr_assert(eq(str, h, (char *)v[i].want), "n = %zu byte by byte", v[i].n);
  }
}

/* RFC 4231, section 4: HMAC-SHA-512 test cases 1 to 7. */
Test(hmac_sha512, rfc4231_test_cases) {
  uint8_t key3[20], data3[50], key4[25], data4[50], key6[131];
  memset(key3, 0xaa, sizeof key3);
  memset(data3, 0xdd, sizeof data3);
  for (size_t i = 0; i < sizeof key4; i++) {
    key4[i] = (uint8_t)(i + 1);
  }
  memset(data4, 0xcd, sizeof data4);
  memset(key6, 0xaa, sizeof key6);
  const char *data7 = "This is a test using a larger than block-size key and a larger than "
                      "block-size data. The key needs to be hashed before being used by the "
                      "HMAC algorithm.";
  const struct {
    const void *key;
    size_t key_len;
    const void *data;
    size_t data_len;
    const char *want;
  } tc[] = {
      {"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20,
       "Hi There", 8,
       "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
       "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
      {"Jefe", 4, "what do ya want for nothing?", 28,
       "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
       "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
      {key3, sizeof key3, data3, sizeof data3,
       "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
       "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
      {key4, sizeof key4, data4, sizeof data4,
       "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
       "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
      /* Test case 5: the RFC gives only the first 128 bits (truncation). */
      {"\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c", 20,
       "Test With Truncation", 20, "415fad6271580a531d4179bc891d87a6"},
      {key6, sizeof key6, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
       "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
       "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
      {key6, sizeof key6, data7, strlen(data7),
       "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
       "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
  };
  for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
    uint8_t mac[64];
    char h[129];
    mqttb_hmac_sha512(tc[i].key, tc[i].key_len, tc[i].data, tc[i].data_len, mac);
    hex(mac, sizeof mac, h);
    size_t want_len = strlen(tc[i].want);
    h[want_len] = '\0'; /* test case 5 compares a prefix */
    cr_assert(eq(str, h, (char *)tc[i].want), "RFC 4231 test case %zu", i + 1);

    /* Streaming in two pieces gives the same tag. */
    mqttb_hmac_sha512_ctx ctx;
    mqttb_hmac_sha512_init(&ctx, tc[i].key, tc[i].key_len);
    mqttb_hmac_sha512_update(&ctx, tc[i].data, tc[i].data_len / 2);
    mqttb_hmac_sha512_update(&ctx, (const char *)tc[i].data + tc[i].data_len / 2,
                             tc[i].data_len - tc[i].data_len / 2);
    uint8_t mac2[64];
    mqttb_hmac_sha512_final(&ctx, mac2);
    cr_assert(eq(int, memcmp(mac, mac2, sizeof mac), 0), "test case %zu streamed", i + 1);
  }
  cr_assert(eq(sz, strlen(tc[4].want), 32));
}

static void assert_pbkdf2(const void *pw, size_t pw_len, const void *salt, size_t salt_len,
                          uint32_t iter, size_t out_len, const char *want) {
  uint8_t out[128];
  char h[257];
  cr_assert(out_len <= sizeof out);
  cr_assert(eq(int, mqttb_pbkdf2_sha512(pw, pw_len, salt, salt_len, iter, out, out_len), 0));
  hex(out, out_len, h);
  cr_assert(eq(str, h, (char *)want), "PBKDF2 %u iterations, %zu bytes", iter, out_len);
}

/* Values checked with Python: hashlib.pbkdf2_hmac('sha512', P, S, c, dkLen). */
Test(pbkdf2_sha512, password_salt_1_2_4096_iterations) {
  assert_pbkdf2("password", 8, "salt", 4, 1, 64,
                "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252"
                "c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce");
  assert_pbkdf2("password", 8, "salt", 4, 2, 64,
                "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53c"
                "f76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e");
  assert_pbkdf2("password", 8, "salt", 4, 4096, 64,
                "d197b1b33db0143e018b12f3d1d1479e6cdebdcc97c5c0f87f6902e072f457b5"
                "143f30602641b3d55cd335988cb36b84376060ecd532e039b742a239434af2d5");
}

Test(pbkdf2_sha512, long_password_and_salt_4096_iterations) {
  const char *p = "passwordPASSWORDpassword";
  const char *s = "saltSALTsaltSALTsaltSALTsaltSALTsalt";
  assert_pbkdf2(p, strlen(p), s, strlen(s), 4096, 64,
                "8c0511f4c6e597c6ac6315d8f0362e225f3c501495ba23b868c005174dc4ee71"
                "115b59f9e60cd9532fa33e0f75aefe30225c583a186cd82bd4daea9724a3d3b8");
}

Test(pbkdf2_sha512, several_blocks_and_truncation) {
  /* 100 bytes: block 1 whole, block 2 cut at 36 bytes. */
  assert_pbkdf2("password", 8, "salt", 4, 2, 100,
                "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53c"
                "f76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e"
                "473e311ad827b68945f4e2dddb204c78e40e2495141e411cd272d020640d673c"
                "d34aa29f");
  assert_pbkdf2("password", 8, "salt", 4, 1, 20, "867f70cf1ade02cff3752599a3a53dc4af34c7a6");
}

Test(pbkdf2_sha512, empty_password_and_salt) {
  assert_pbkdf2("", 0, "", 0, 1, 64,
                "6d2ecbbbfb2e6dcd7056faf9af6aa06eae594391db983279a6bf27e0eb228614"
                "3ab0c996f33ca4b667e945829ea693340f2831797324e5f31df18ed171d18c97");
}

/* The longest MQTT password (65,535 bytes) as the HMAC key, Mosquitto's
 * default 101 iterations and a 12-byte salt. */
Test(pbkdf2_sha512, password_of_65535_bytes) {
  static uint8_t pw[65535];
  for (size_t i = 0; i < sizeof pw; i++) {
    pw[i] = (uint8_t)((i * 7 + 1) % 256);
  }
  assert_pbkdf2(pw, sizeof pw, "0123456789ab", 12, 101, 64,
                "10e910dc16e0721240bcee8022f13494cbb62c8a1c6fdc46f4ad11581e534430"
                "dcd962d3b3a091f6e0aa6346f5e8bc3af137e9e2ba80fc6d2ebf0d1d9cf1f4b2");
}

Test(pbkdf2_sha512, refuses_zero_iterations_and_zero_length) {
  uint8_t out[64];
  cr_assert(eq(int, mqttb_pbkdf2_sha512("p", 1, "s", 1, 0, out, sizeof out), -1));
  cr_assert(eq(int, mqttb_pbkdf2_sha512("p", 1, "s", 1, 1, out, 0), -1));
}

/* RFC 4648, section 10. */
Test(base64, rfc4648_vectors_both_ways) {
  static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    char enc[16];
    size_t n = mqttb_base64_encode(plain[i], strlen(plain[i]), enc, sizeof enc);
    cr_assert(eq(sz, n, strlen(coded[i])));
    cr_assert(eq(str, enc, (char *)coded[i]));
    cr_assert(eq(sz, MQTTB_BASE64_ENCODED_LEN(strlen(plain[i])), n));
    uint8_t dec[16];
    size_t dec_len = 99;
    cr_assert(
        eq(int, mqttb_base64_decode(coded[i], strlen(coded[i]), dec, sizeof dec, &dec_len), 0),
        "decode '%s'", coded[i]);
    cr_assert(eq(sz, dec_len, strlen(plain[i])));
    cr_assert(eq(int, memcmp(dec, plain[i], dec_len), 0));
  }
}

Test(base64, every_byte_value_round_trips) {
  uint8_t all[256];
  for (size_t i = 0; i < sizeof all; i++) {
    all[i] = (uint8_t)i;
  }
  for (size_t len = 0; len <= sizeof all; len++) {
    char enc[MQTTB_BASE64_ENCODED_LEN(256) + 1];
    size_t n = mqttb_base64_encode(all + (256 - len), len, enc, sizeof enc);
    cr_assert(eq(sz, n, MQTTB_BASE64_ENCODED_LEN(len)));
    uint8_t dec[256];
    size_t dec_len;
    cr_assert(eq(int, mqttb_base64_decode(enc, n, dec, sizeof dec, &dec_len), 0));
    cr_assert(eq(sz, dec_len, len));
    cr_assert(eq(int, memcmp(dec, all + (256 - len), len), 0));
  }
}

Test(base64, strict_decoder_rejects_what_is_not_canonical) {
  static const char *const bad[] = {
      "Zg=",           /* length not a multiple of 4 */
      "Zg",            /* padding missing */
      "Zm9vY",         /* 5 characters */
      "Zg==Zg==",      /* padding before the end */
      "Zg==\n",        /* trailing newline */
      "Zm9v\nYmFy",    /* line break */
      "Zm 9v",         /* space */
      "Zm-v",          /* URL-safe alphabet */
      "Zm_v",          /* URL-safe alphabet */
      "====",          /* padding only */
      "Z===",          /* three pad characters */
      "=Zm9",          /* padding first */
      "Zm=v",          /* padding in the middle of a group */
      "Zh==",          /* left-over bits not zero ("Zg==" is the encoding of "f") */
      "Zm9=",          /* left-over bits not zero ("Zm8=" is "fo") */
      "Zm9v\xc3\xa9=", /* non-ASCII */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t dec[16];
    size_t dec_len;
    cr_assert(eq(int, mqttb_base64_decode(bad[i], strlen(bad[i]), dec, sizeof dec, &dec_len), -1),
              "accepted '%s'", bad[i]);
  }
  /* A NUL inside the given length is a bad character too. */
  uint8_t dec[16];
  size_t dec_len;
  cr_assert(eq(int, mqttb_base64_decode("Zm\0v", 4, dec, sizeof dec, &dec_len), -1));
}

Test(base64, output_buffers_too_small_are_refused) {
  uint8_t dec[5];
  size_t dec_len;
  cr_assert(eq(int, mqttb_base64_decode("Zm9vYmFy", 8, dec, sizeof dec, &dec_len), -1));
  cr_assert(eq(int, mqttb_base64_decode("Zm9vYmE=", 8, dec, sizeof dec, &dec_len), 0));
  cr_assert(eq(sz, dec_len, 5));
  char enc[8];
  cr_assert(eq(sz, mqttb_base64_encode("foobar", 6, enc, 8), 0)); /* needs 9 with the NUL */
  char enc9[9];
  cr_assert(eq(sz, mqttb_base64_encode("foobar", 6, enc9, sizeof enc9), 8));
}

Test(ct_equal, equal_and_unequal_buffers) {
  uint8_t a[64], b[64];
  for (size_t i = 0; i < sizeof a; i++) {
    a[i] = b[i] = (uint8_t)(i * 37);
  }
  cr_assert(mqttb_ct_equal(a, b, sizeof a));
  cr_assert(mqttb_ct_equal(a, b, 0));
  for (size_t i = 0; i < sizeof a; i++) {
    for (unsigned bit = 0; bit < 8; bit++) {
      b[i] ^= (uint8_t)(1u << bit);
      cr_assert(not(mqttb_ct_equal(a, b, sizeof a)), "byte %zu bit %u", i, bit);
      b[i] ^= (uint8_t)(1u << bit);
    }
  }
  cr_assert(mqttb_ct_equal(a, b, sizeof a));
}

Test(secure_zero, clears_the_buffer) {
  uint8_t buf[33];
  memset(buf, 0xa5, sizeof buf);
  mqttb_secure_zero(buf, sizeof buf);
  for (size_t i = 0; i < sizeof buf; i++) {
    cr_assert(eq(u8, buf[i], 0));
  }
}
