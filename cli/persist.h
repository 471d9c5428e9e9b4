/*
 * mqttb CLI: persistence, between the broker and its files (journal.h).
 * The store callback's records go to the journal; at start-up the files
 * are replayed into the broker; before each iteration's output the journal
 * is written (and with persistence_sync fdatasync'ed, then the held
 * acknowledgements released); the store's figures go to $SYS/broker/store/.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MQTTB_CLI_PERSIST_H
#define MQTTB_CLI_PERSIST_H

#include <stdint.h>

#include <mqttb/mqttb.h>

#include "config.h"
#include "loop.h"

struct mqttb_cli_persist;

/* Open the store that @p cfg names (lock it, create the directory if
 * missing). NULL with a message in @p err when it cannot be used. */
struct mqttb_cli_persist *mqttb_cli_persist_open(const struct mqttb_cli_persistence *cfg,
                                                 uint32_t sys_interval_ms, char *err,
                                                 size_t errlen);

/* The loop's hooks for @p p. */
struct mqttb_cli_loop_store mqttb_cli_persist_hooks(struct mqttb_cli_persist *p);

/* Replay the files into @p broker and end its restore; before listening. */
void mqttb_cli_persist_restore(struct mqttb_cli_persist *p, mqttb_broker *broker, uint64_t now);

/* SIGHUP: autosave_interval, autosave_on_changes, persistence_sync and
 * sys_interval apply; the rest needs a restart. */
void mqttb_cli_persist_reload(struct mqttb_cli_persist *p, const struct mqttb_cli_persistence *cfg,
                              uint32_t sys_interval_ms);

/* Close the files; @p p may be NULL. */
void mqttb_cli_persist_close(struct mqttb_cli_persist *p);

#endif /* MQTTB_CLI_PERSIST_H */
