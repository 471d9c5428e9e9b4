/*
 * mqttb: a standalone MQTT broker built on libmqttbroker.
 *
 * Command line and configuration follow Mosquitto's where they overlap.
 *
 * SPDX-License-Identifier: MIT
 */
#include "auth.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "persist.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define DEFAULT_PORT 1883

static const char usage_text[] =
    "mqttb is an MQTT 5.0/3.1.1/3.1 broker.\n"
    "\n"
    "Usage: mqttb [-c config_file] [-p port]... [-b address]... [-v] [--port-file file]\n"
    "\n"
    "  -c, --config-file FILE  read the configuration from FILE (mosquitto.conf syntax)\n"
    "  -p, --port PORT         listen on PORT (default 1883, 0 picks a free port);\n"
    "                          may be repeated; overrides 'port' from the config file\n"
    "  -b, --bind ADDRESS      listen on ADDRESS only; may be repeated; overrides\n"
    "                          'bind_address' from the config file\n"
    "      --port-file FILE    after binding, write the first listener's port to FILE\n"
    "  -v, --verbose           log everything, including debug messages\n"
    "  -h, --help              show this help and exit\n"
    "      --version           show the version and exit\n"
    "\n"
    "Without a listener in the configuration (no 'listener', 'port' or 'bind_address'),\n"
    "mqttb listens on 127.0.0.1 and ::1 only and allows anonymous clients (Mosquitto 2's\n"
    "local only mode). Once a listener is configured, anonymous clients are refused\n"
    "unless 'allow_anonymous true'. SIGHUP reloads the configuration file and\n"
    "reopens the log file.\n"
    "\n"
    "Config file options (as in mosquitto.conf):\n"
    "  listener PORT [ADDRESS]   port PORT   bind_address ADDRESS\n"
    "  allow_anonymous true|false   password_file FILE   acl_file FILE\n"
    "  per_listener_settings true|false\n"
    "  max_inflight_messages N   max_queued_messages N   max_queued_bytes N\n"
    "  max_connections N (-1 = unlimited)   max_keepalive N   max_packet_size N\n"
    "  queue_qos0_messages true|false   allow_zero_length_clientid true|false\n"
    "  auto_id_prefix PREFIX   retain_available true|false   sys_interval N\n"
    "  max_topic_alias N   max_qos 0|1|2   memory_limit BYTES\n"
    "  (mqttb extensions) max_subscriptions_per_client N   max_topic_levels N\n"
    "  max_queued_bytes_total N   max_output_bytes N   output_stall_timeout SECONDS\n"
    "  max_connect_size BYTES   max_input_bytes_total BYTES   work_budget N\n"
    "  response_information TEXT (sent to MQTT 5 clients that ask for it)\n"
    "  log_type error|warning|notice|information|debug|all|none (repeatable)\n"
    "  log_dest none|stderr|stdout|syslog|file PATH (repeatable; the file is\n"
    "  reopened on SIGHUP)   log_facility 0-7   log_timestamp true|false\n"
    "  log_timestamp_format STRFTIME_FORMAT\n"
    "  pid_file PATH   user NAME (when started as root: switch to NAME after\n"
    "  listening)   include_dir DIR (its *.conf files, in alphabetical order)\n"
    "  connect_timeout SECONDS   (mqttb extension) time a new connection has to send\n"
    "                            CONNECT before it is closed; default 10, 0 = no limit\n"
    "  persistence true|false   persistence_location DIR   persistence_file NAME\n"
    "  autosave_interval N   autosave_on_changes true|false\n"
    "  persistent_client_expiration DURATION (such as 14d; h d w m y)\n"
    "  persistence_sync true|false  (mqttb extension) fdatasync the journal before\n"
    "                            acknowledging; default false\n"
    "\n"
    "Passwords: mqttb_passwd (the interface of mosquitto_passwd).\n";

enum { OPT_VERSION = 256, OPT_PORT_FILE };

/* What the command line asked for. */
struct cli_args {
  const char *config_file;
  const char *port_file;
  uint16_t *ports;
  size_t port_count;
  const char **binds;
  size_t bind_count;
  bool verbose;
};

/* One socket group to open: host NULL means every address. */
struct listen_spec {
  const char *host;
  uint16_t port;
  const char *unix_path; /* listener 0 PATH */
  int proxy_protocol;
  const struct mqttb_cli_tls_options *tls;
  bool websockets;
  size_t auth; /* index into the broker's security sets */
};

/* The running broker's configuration, for SIGHUP. */
struct state {
  const struct cli_args *args;
  struct mqttb_cli_config *cfg;
  /* [0]: the broker's security options (with per_listener_settings: the
   * default listener's); [1 + i]: listener i's, with per_listener_settings. */
  struct mqttb_cli_auth *auths;
  size_t nauths;
  /* No listener configured: Mosquitto 2's local only mode. */
  bool local_only;
  struct mqttb_cli_loop *loop;
  /* NULL: persistence false. */
  struct mqttb_cli_persist *persist;
  /* The TLS listeners' contexts (reloaded on SIGHUP). */
  struct mqttb_cli_tls_ctx **tls;
  size_t ntls;
};

static bool same_string(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The store's files stay those it opened: persistence, persistence_location
 * and persistence_file need a restart; the rest of the options apply. */
static void reload_persistence(struct state *st, struct mqttb_cli_config *next, const char *path) {
  struct mqttb_cli_persistence *old = &st->cfg->persistence, *np = &next->persistence;
  if (old->enabled != np->enabled || !same_string(old->location, np->location) ||
      !same_string(old->file, np->file)) {
    mqttb_cli_log(MQTTB_LOG_WARNING,
                  "%s: persistence, persistence_location and persistence_file changed; that "
                  "needs a restart (persistence stays %s)",
                  path, old->enabled ? "as it was" : "off");
    np->enabled = old->enabled;
    char *loc = np->location, *file = np->file;
    np->location = old->location;
    np->file = old->file;
    old->location = loc;
    old->file = file;
  }
  next->settings.store_sync = np->enabled && np->sync;
  if (st->persist != NULL) {
    mqttb_cli_persist_reload(st->persist, np, next->settings.sys_interval_ms);
  }
}

/* As Mosquitto, pid_file and user are not reloaded: the running values stay. */
static void reload_process(struct state *st, struct mqttb_cli_config *next, const char *path) {
  struct mqttb_cli_config *old = st->cfg;
  if (!same_string(old->pid_file, next->pid_file) || !same_string(old->user, next->user)) {
    mqttb_cli_log(MQTTB_LOG_WARNING, "%s: pid_file or user changed; that needs a restart", path);
  }
  char *pid_file = next->pid_file, *user = next->user;
  next->pid_file = old->pid_file;
  next->user = old->user;
  old->pid_file = pid_file;
  old->user = user;
}

static bool parse_port(const char *s, uint16_t *out) {
  char *end;
  if (*s < '0' || *s > '9') {
    return false;
  }
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > 65535) {
    return false;
  }
  *out = (uint16_t)v;
  return true;
}

/* Returns -1 to continue, otherwise the exit status. */
static int parse_args(int argc, char **argv, struct cli_args *args) {
  static const struct option long_options[] = {
      {"config-file", required_argument, NULL, 'c'},
      {"port", required_argument, NULL, 'p'},
      {"bind", required_argument, NULL, 'b'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, OPT_VERSION},
      {"port-file", required_argument, NULL, OPT_PORT_FILE},
      {NULL, 0, NULL, 0},
  };
  /* Never more values than arguments. */
  args->ports = calloc((size_t)argc, sizeof *args->ports);
  args->binds = calloc((size_t)argc, sizeof *args->binds);
  if (args->ports == NULL || args->binds == NULL) {
    mqttb_cli_fatal("out of memory");
    return 1;
  }
  int opt;
  while ((opt = getopt_long(argc, argv, "c:p:b:vh", long_options, NULL)) != -1) {
    switch (opt) {
    case 'c':
      args->config_file = optarg;
      break;
    case 'p': {
      uint16_t port;
      if (!parse_port(optarg, &port)) {
        mqttb_cli_fatal("invalid port '%s' (expected 0 to 65535)", optarg);
        return 1;
      }
      args->ports[args->port_count++] = port;
      break;
    }
    case 'b':
      args->binds[args->bind_count++] = optarg;
      break;
    case 'v':
      args->verbose = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      return 0;
    case OPT_VERSION:
      printf("mqttb version %s\n", mqttb_version());
      return 0;
    case OPT_PORT_FILE:
      args->port_file = optarg;
      break;
    default:
      /* getopt_long already said what was wrong. */
      fputs("Try 'mqttb --help' for more information.\n", stderr);
      return 1;
    }
  }
  if (optind < argc) {
    mqttb_cli_fatal("unexpected argument '%s'", argv[optind]);
    fputs("Try 'mqttb --help' for more information.\n", stderr);
    return 1;
  }
  return -1;
}

/*
 * The default listener (ports x addresses, from -p/-b or port/bind_address)
 * comes first, then the config file's `listener` lines. As in Mosquitto 2, a
 * config file with only `listener` lines has no default listener.
 */
static struct listen_spec *plan_listeners(const struct cli_args *args,
                                          const struct mqttb_cli_config *cfg, bool local_only,
                                          size_t *count) {
  bool want_default = args->port_count > 0 || args->bind_count > 0 || cfg->port >= 0 ||
                      cfg->bind_address != NULL || cfg->listener_count == 0;
  uint16_t cfg_port = cfg->port >= 0 ? (uint16_t)cfg->port : DEFAULT_PORT;
  const uint16_t *ports = args->port_count > 0 ? args->ports : &cfg_port;
  size_t nports = args->port_count > 0 ? args->port_count : 1;
  /* Local only mode listens on loopback ("") unless -b says otherwise. */
  const char *cfg_host = local_only ? "" : cfg->bind_address;
  const char *const *hosts = args->bind_count > 0 ? args->binds : &cfg_host;
  size_t nhosts = args->bind_count > 0 ? args->bind_count : 1;

  size_t n = (want_default ? nports * nhosts : 0) + cfg->listener_count;
  struct listen_spec *specs = calloc(n, sizeof *specs);
  if (specs == NULL) {
    return NULL;
  }
  size_t k = 0;
  for (size_t p = 0; want_default && p < nports; p++) {
    for (size_t h = 0; h < nhosts; h++) {
      specs[k].host = hosts[h];
      specs[k].port = ports[p];
      specs[k].proxy_protocol = cfg->proxy_protocol;
      specs[k].tls = &cfg->tls;
      specs[k].websockets = cfg->websockets;
      k++;
    }
  }
  for (size_t i = 0; i < cfg->listener_count; i++) {
    specs[k].host = cfg->listeners[i].bind_address;
    specs[k].port = cfg->listeners[i].port;
    specs[k].unix_path = cfg->listeners[i].unix_path;
    specs[k].proxy_protocol = cfg->listeners[i].proxy_protocol;
    specs[k].tls = &cfg->listeners[i].tls;
    specs[k].websockets = cfg->listeners[i].websockets;
    specs[k].auth = cfg->per_listener_settings ? 1 + i : 0;
    k++;
  }
  *count = n;
  return specs;
}

/* Write via a temporary file and rename, so a reader never sees a partial file. */
static int write_port_file(const char *path, uint16_t port) {
  size_t len = strlen(path) + sizeof ".tmp";
  char *tmp = malloc(len);
  if (tmp == NULL) {
    mqttb_cli_fatal("out of memory");
    return -1;
  }
  snprintf(tmp, len, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int ok = f != NULL && fprintf(f, "%u\n", (unsigned)port) > 0;
  if (f != NULL && fclose(f) != 0) {
    ok = 0;
  }
  if (!ok || rename(tmp, path) != 0) {
    mqttb_cli_fatal("cannot write port file '%s': %s", path, strerror(errno));
    remove(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return 0;
}

/* pid_file: the process id and a newline, as a daemon's pid file holds.
 * Mosquitto refuses to start when it cannot write it. */
static int write_pid_file(const char *path) {
  FILE *f = fopen(path, "we");
  int ok = f != NULL && fprintf(f, "%ld\n", (long)getpid()) > 0;
  int saved = errno;
  if (f != NULL && fclose(f) != 0) {
    saved = errno;
    ok = 0;
  }
  if (!ok) {
    mqttb_cli_fatal("unable to write pid file %s: %s", path, strerror(saved));
    if (f != NULL) {
      remove(path);
    }
    return -1;
  }
  return 0;
}

static void remove_pid_file(const char *path) {
  if (remove(path) != 0 && errno != ENOENT) {
    mqttb_cli_log(MQTTB_LOG_WARNING, "cannot remove pid file %s: %s", path, strerror(errno));
  }
}

/* What `user` did, for the log once it is configured. */
struct run_as {
  bool root;     /* started as root */
  bool switched; /* now runs as name */
  char name[256];
  uid_t uid;
  gid_t gid;
  bool fell_back; /* "mosquitto" does not exist: "nobody" */
};

/*
 * user NAME, as Mosquitto's: when started as root, switch to NAME and its
 * primary group (with its supplementary groups) right after the
 * configuration is read, so that the log file, the pid file, the store,
 * the password and ACL files and the listeners are all opened as NAME;
 * "mosquitto" that does not exist falls back to "nobody"; "root" stays
 * root; when not started as root it has no effect. Returns -1 after
 * printing why.
 */
static int switch_user(const struct mqttb_cli_config *cfg, struct run_as *as) {
  memset(as, 0, sizeof *as);
  const char *user = cfg->user;
  as->root = geteuid() == 0;
  if (!as->root || user == NULL || strcmp(user, "root") == 0) {
    return 0;
  }
  struct passwd *pw = getpwnam(user);
  if (pw == NULL && strcmp(user, "mosquitto") == 0) {
    as->fell_back = true;
    user = "nobody";
    pw = getpwnam(user);
  }
  if (pw == NULL) {
    mqttb_cli_fatal("unable to switch to user '%s' because this user does not exist", user);
    return -1;
  }
  if (strlen(pw->pw_name) >= sizeof as->name) {
    mqttb_cli_fatal("user name '%s' is too long", pw->pw_name);
    return -1;
  }
  snprintf(as->name, sizeof as->name, "%s", pw->pw_name);
  as->uid = pw->pw_uid;
  as->gid = pw->pw_gid;
  if (initgroups(as->name, as->gid) != 0) {
    mqttb_cli_fatal("cannot set the groups of user '%s': %s", as->name, strerror(errno));
    return -1;
  }
  if (setgid(as->gid) != 0) {
    mqttb_cli_fatal("cannot set group id %u of user '%s': %s", (unsigned)as->gid, as->name,
                    strerror(errno));
    return -1;
  }
  if (setuid(as->uid) != 0) {
    mqttb_cli_fatal("cannot set user id %u of user '%s': %s", (unsigned)as->uid, as->name,
                    strerror(errno));
    return -1;
  }
  as->switched = true;
  return 0;
}

static void log_run_as(const struct mqttb_cli_config *cfg, const struct run_as *as) {
  if (as->fell_back) {
    mqttb_cli_log(MQTTB_LOG_WARNING, "user 'mosquitto' does not exist; switched to 'nobody'");
  }
  if (as->switched) {
    mqttb_cli_log(MQTTB_LOG_NOTICE, "Running as user %s (uid %u, gid %u).", as->name,
                  (unsigned)as->uid, (unsigned)as->gid);
  } else if (as->root) {
    mqttb_cli_log(MQTTB_LOG_WARNING, "running as root%s",
                  cfg->user == NULL ? " (unlike Mosquitto, mqttb does not switch to user "
                                      "'mosquitto' by default: set 'user' to switch)"
                                    : "");
  } else if (cfg->user != NULL) {
    mqttb_cli_log(MQTTB_LOG_DEBUG, "user %s: not started as root, nothing to change", cfg->user);
  }
}

/* A broker holds a socket per client: allow as many as the hard limit permits. */
static void raise_nofile_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      mqttb_cli_log(MQTTB_LOG_DEBUG, "cannot raise the open file limit: %s", strerror(errno));
    }
  }
}

/* Mosquitto 2: without listeners anonymous clients are allowed (local
 * only mode); once a listener is configured they are refused unless
 * allow_anonymous true. */
static bool anonymous_allowed(const struct mqttb_cli_security *sec, bool local_only) {
  return sec->allow_anonymous >= 0 ? sec->allow_anonymous != 0 : local_only;
}

/* The security set of index i of a configuration. */
static const struct mqttb_cli_security *security_of(const struct mqttb_cli_config *cfg, size_t i) {
  return i == 0 ? &cfg->sec : &cfg->listeners[i - 1].sec;
}

static size_t security_count(const struct mqttb_cli_config *cfg) {
  return cfg->per_listener_settings ? 1 + cfg->listener_count : 1;
}

/* Load every security set's files; on failure none is kept. */
static struct mqttb_cli_auth *load_auths(const struct mqttb_cli_config *cfg, bool local_only,
                                         size_t *count, char *err, size_t errlen) {
  size_t n = security_count(cfg);
  struct mqttb_cli_auth *auths = calloc(n, sizeof *auths);
  if (auths == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const struct mqttb_cli_security *sec = security_of(cfg, i);
    if (mqttb_cli_auth_load(&auths[i], anonymous_allowed(sec, local_only), sec->password_file,
                            sec->acl_file, err, errlen) != 0) {
      for (size_t j = 0; j < i; j++) {
        mqttb_cli_auth_free(&auths[j]);
      }
      free(auths);
      return NULL;
    }
  }
  *count = n;
  return auths;
}

static void free_auths(struct mqttb_cli_auth *auths, size_t n) {
  for (size_t i = 0; auths != NULL && i < n; i++) {
    mqttb_cli_auth_free(&auths[i]);
  }
  free(auths);
}

static bool is_loopback(const char *host) {
  return host != NULL && (host[0] == '\0' || strncmp(host, "127.", 4) == 0 ||
                          strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0);
}

/* Say who may connect where. */
static void log_security(const struct state *st, const struct listen_spec *specs, size_t n) {
  if (st->local_only) {
    mqttb_cli_log(MQTTB_LOG_NOTICE, "Starting in local only mode. Connections will only be "
                                    "possible from clients running on this machine.");
    mqttb_cli_log(MQTTB_LOG_NOTICE, "Create a configuration file which defines a listener to "
                                    "allow remote access.");
  }
  for (size_t i = 0; i < n; i++) {
    const struct mqttb_cli_auth *a = &st->auths[specs[i].auth];
    const char *where = specs[i].host == NULL      ? "all addresses"
                        : specs[i].host[0] == '\0' ? "loopback"
                                                   : specs[i].host;
    if (specs[i].unix_path != NULL) {
      /* Who may connect is the socket file's permissions' business. */
      if (!a->allow_anonymous) {
        mqttb_cli_log(MQTTB_LOG_NOTICE,
                      "Listener on unix:%s: anonymous clients are refused (allow_anonymous "
                      "false)%s",
                      specs[i].unix_path,
                      a->pw == NULL ? "; no password_file, so every client is refused" : "");
      }
      continue;
    }
    if (!a->allow_anonymous) {
      mqttb_cli_log(MQTTB_LOG_NOTICE,
                    "Listener on port %u (%s): anonymous clients are refused "
                    "(allow_anonymous false)%s",
                    (unsigned)specs[i].port, where,
                    a->pw == NULL ? "; no password_file, so every client is refused" : "");
    } else if (!is_loopback(specs[i].host) && a->pw == NULL) {
      mqttb_cli_log(MQTTB_LOG_WARNING,
                    "Listener on port %u (%s) is open to the network without authentication: "
                    "anyone can connect",
                    (unsigned)specs[i].port, where);
    }
  }
}

/* A listener's TLS: a context from its options (certfile and keyfile given),
 * or, on a PROXY protocol version 2 listener whose TLS ends at the proxy,
 * only use_identity_as_username: the name comes from the header. */
static int listener_tls(struct state *st, const struct listen_spec *spec,
                        struct mqttb_cli_listen *ls) {
  const struct mqttb_cli_tls_options *o = spec->tls;
  if (o == NULL || !mqttb_cli_tls_options_any(o)) {
    return 0;
  }
  if (o->certfile == NULL && o->keyfile == NULL && o->use_identity_as_username &&
      spec->proxy_protocol == 2) {
    ls->proxy_identity = true;
    return 0;
  }
#if MQTTB_CLI_TLS
  char err[512];
  struct mqttb_cli_tls_ctx *ctx = mqttb_cli_tls_ctx_new(o, err, sizeof err);
  if (ctx == NULL) {
    mqttb_cli_fatal("TLS listener on %s%u: %s", spec->unix_path != NULL ? "unix:" : "port ",
                    spec->unix_path != NULL ? 0u : (unsigned)spec->port, err);
    return -1;
  }
  st->tls[st->ntls++] = ctx;
  ls->tls = ctx;
  return 0;
#else
  (void)st;
  (void)ls;
  mqttb_cli_fatal("a TLS listener needs TLS, which this build of mqttb does not have");
  return -1;
#endif
}

static void free_tls(struct state *st) {
#if MQTTB_CLI_TLS
  for (size_t i = 0; i < st->ntls; i++) {
    mqttb_cli_tls_ctx_free(st->tls[i]);
  }
#endif
  free(st->tls);
  st->tls = NULL;
  st->ntls = 0;
}

/* SIGHUP: certificates, keys and revocation lists are read again, so a
 * renewed certificate is used by new connections without a restart. A
 * failure keeps the old ones. */
static void reload_tls(struct state *st) {
#if MQTTB_CLI_TLS
  for (size_t i = 0; i < st->ntls; i++) {
    char err[512];
    if (mqttb_cli_tls_ctx_reload(st->tls[i], err, sizeof err) != 0) {
      mqttb_cli_log(MQTTB_LOG_ERROR, "Reloading TLS certificates failed: %s; the old ones stay",
                    err);
    }
  }
#else
  (void)st;
#endif
}

/* SIGHUP: read the configuration file again. What fails leaves the old
 * configuration in place; listeners stay as they are. */
static int reload(void *arg) {
  struct state *st = arg;
  const char *path = st->args->config_file;
  mqttb_cli_log(MQTTB_LOG_NOTICE, "Reloading config file %s.", path);
  reload_tls(st);
  struct mqttb_cli_config *next = malloc(sizeof *next);
  if (next == NULL) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "Reload failed: out of memory; the old configuration stays");
    return -1;
  }
  mqttb_cli_config_init(next);
  char err[512];
  if (mqttb_cli_config_load(path, next, err, sizeof err) != 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "Reload failed: %s; the old configuration stays", err);
    mqttb_cli_config_free(next);
    free(next);
    return -1;
  }
  size_t nauths = 0;
  struct mqttb_cli_auth *auths = NULL;
  if (security_count(next) != st->nauths || next->listener_count != st->cfg->listener_count) {
    mqttb_cli_log(MQTTB_LOG_ERROR,
                  "Reload failed: %s: the listeners or per_listener_settings changed, which "
                  "needs a restart; the old configuration stays",
                  path);
  } else if ((auths = load_auths(next, st->local_only, &nauths, err, sizeof err)) == NULL) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "Reload failed: %s; the old configuration stays", err);
  }
  if (auths == NULL) {
    mqttb_cli_config_free(next);
    free(next);
    return -1;
  }
  /* Connections look their rules up at each check: swapping the contents
   * makes the new files apply from each client's next packet on. */
  for (size_t i = 0; i < nauths; i++) {
    mqttb_cli_auth_free(&st->auths[i]);
    st->auths[i] = auths[i];
  }
  free(auths);
  reload_persistence(st, next, path);
  next->settings.auto_id_key[0] = st->cfg->settings.auto_id_key[0];
  next->settings.auto_id_key[1] = st->cfg->settings.auto_id_key[1];
  int rc = mqttb_broker_reload_settings(mqttb_cli_loop_broker(st->loop), &next->settings);
  if (rc != MQTTB_OK) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "Reloading the broker's limits failed: %s", mqttb_strerror(rc));
  }
  reload_process(st, next, path);
  if (mqttb_cli_log_configure(st->args->verbose ? MQTTB_CLI_LOG_TYPES_ALL : next->log_types, next,
                              err, sizeof err) != 0) {
    mqttb_cli_log(MQTTB_LOG_ERROR, "%s; logging to stderr instead", err);
  }
  mqttb_cli_config_free(st->cfg);
  *st->cfg = *next;
  free(next);
  mqttb_cli_log(MQTTB_LOG_NOTICE,
                "Config reloaded: password_file, acl_file, allow_anonymous, log, limits, "
                "autosave and persistence_sync apply now (the log file was reopened); "
                "listeners, the persistence files, pid_file and user are not reloaded "
                "(restart to change them).");
  return 0;
}

static int run(const struct cli_args *args, struct mqttb_cli_config *cfg) {
  if (args->config_file != NULL) {
    char err[512];
    if (mqttb_cli_config_load(args->config_file, cfg, err, sizeof err) != 0) {
      mqttb_cli_fatal("%s", err);
      return 1;
    }
  }
  raise_nofile_limit();
  struct run_as as;
  if (switch_user(cfg, &as) != 0) {
    return 1;
  }
  /* As Mosquitto's -v: everything, whatever log_type says. */
  char err[512];
  if (mqttb_cli_log_configure(args->verbose ? MQTTB_CLI_LOG_TYPES_ALL : cfg->log_types, cfg, err,
                              sizeof err) != 0) {
    mqttb_cli_fatal("%s", err);
    return 1;
  }
  mqttb_cli_log(MQTTB_LOG_NOTICE, "mqttb version %s starting", mqttb_version());
  if (args->config_file != NULL) {
    mqttb_cli_log(MQTTB_LOG_NOTICE, "Config loaded from %s.", args->config_file);
  }
  log_run_as(cfg, &as);
  struct state st = {.args = args, .cfg = cfg};
  st.local_only = cfg->listener_count == 0 && cfg->port < 0 && cfg->bind_address == NULL;
  st.auths = load_auths(cfg, st.local_only, &st.nauths, err, sizeof err);
  if (st.auths == NULL) {
    mqttb_cli_fatal("%s", err);
    return 1;
  }
  size_t nspecs = 0;
  struct listen_spec *specs = plan_listeners(args, cfg, st.local_only, &nspecs);
  if (specs == NULL) {
    mqttb_cli_fatal("out of memory");
    free_auths(st.auths, st.nauths);
    return 1;
  }
  /* Assigned client identifiers must not be guessable. */
  if (getrandom(cfg->settings.auto_id_key, sizeof(cfg->settings.auto_id_key), 0) !=
      (ssize_t)sizeof(cfg->settings.auto_id_key)) {
    mqttb_cli_log(MQTTB_LOG_WARNING, "no random key for assigned client identifiers: %s",
                  strerror(errno));
  }
  /* As Mosquitto: written before the store is opened, and one that cannot
   * be written stops the start. */
  bool pid_written = false;
  if (cfg->pid_file != NULL) {
    if (write_pid_file(cfg->pid_file) != 0) {
      free(specs);
      free_auths(st.auths, st.nauths);
      return 1;
    }
    pid_written = true;
  }
  if (cfg->persistence.enabled) {
    /* Like Mosquitto: a location that cannot be used is a configuration
     * error, reported before anything listens. */
    st.persist =
        mqttb_cli_persist_open(&cfg->persistence, cfg->settings.sys_interval_ms, err, sizeof err);
    if (st.persist == NULL) {
      mqttb_cli_fatal("%s", err);
      free(specs);
      free_auths(st.auths, st.nauths);
      if (pid_written) {
        remove_pid_file(cfg->pid_file);
      }
      return 1;
    }
  }
  struct mqttb_cli_loop_store hooks;
  if (st.persist != NULL) {
    hooks = mqttb_cli_persist_hooks(st.persist);
  }
  st.loop = mqttb_cli_loop_new(&cfg->settings, st.persist != NULL ? &hooks : NULL);
  int status = st.loop == NULL ? 1 : 0;
  if (status == 0 && st.persist != NULL) {
    mqttb_cli_persist_restore(st.persist, mqttb_cli_loop_broker(st.loop), mqttb_cli_loop_now());
  }
  uint16_t first_port = 0;
  if (status == 0) {
    log_security(&st, specs, nspecs);
  }
  st.tls = status == 0 ? calloc(nspecs, sizeof *st.tls) : NULL;
  if (status == 0 && nspecs > 0 && st.tls == NULL) {
    mqttb_cli_fatal("out of memory");
    status = 1;
  }
  for (size_t i = 0; status == 0 && i < nspecs; i++) {
    uint16_t port;
    struct mqttb_cli_listen ls = {.host = specs[i].host,
                                  .port = specs[i].port,
                                  .unix_path = specs[i].unix_path,
                                  .proxy_protocol = specs[i].proxy_protocol,
                                  .websockets = specs[i].websockets,
                                  .auth = &st.auths[specs[i].auth]};
    if (listener_tls(&st, &specs[i], &ls) != 0) {
      status = 1;
      break;
    }
    if (mqttb_cli_loop_listen(st.loop, &ls, &port) != 0) {
      status = 1;
    } else if (i == 0) {
      first_port = port;
    }
  }
  free(specs);
  if (status == 0 && args->port_file != NULL && write_port_file(args->port_file, first_port) != 0) {
    status = 1;
  }
  if (status == 0 && args->config_file != NULL) {
    mqttb_cli_loop_set_reload(st.loop, reload, &st);
  }
  if (status == 0) {
    status = mqttb_cli_loop_run(st.loop);
  }
  mqttb_cli_loop_free(st.loop);
  free_tls(&st);
  mqttb_cli_persist_close(st.persist);
  free_auths(st.auths, st.nauths);
  if (pid_written) {
    remove_pid_file(cfg->pid_file);
  }
  return status;
}

/* Large messages come and go in blocks of their own size. glibc's default,
 * adaptive thresholds give memory back to the kernel as soon as 128 KiB
 * at the top of the heap are free and map anything larger fresh, so the
 * next message's pages are faulted in again: a tenth of the CPU at 64 KiB
 * per message. Up to 2 MiB a block comes from the heap, and up to 16 MiB
 * freed at its top are kept for the next ones. */
static void tune_malloc(void) {
#ifdef __GLIBC__
  /* Unless set through glibc's own environment variables. */
  if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL && getenv("MALLOC_MMAP_THRESHOLD_") == NULL) {
    mallopt(M_MMAP_THRESHOLD, 2 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
  }
#endif
}

int main(int argc, char **argv) {
  tune_malloc();
  struct cli_args args;
  memset(&args, 0, sizeof args);
  int status = parse_args(argc, argv, &args);
  if (status < 0) {
    struct mqttb_cli_config cfg;
    mqttb_cli_config_init(&cfg);
    status = run(&args, &cfg);
    mqttb_cli_log_close();
    mqttb_cli_config_free(&cfg);
  }
  free(args.ports);
  free(args.binds);
  return status;
}
