/* SPDX-License-Identifier: MIT */
/* Packet identifier hash map. See pidmap.h. */
#include "pidmap.h"

#include <mqttb/mqttb.h>

static uint32_t home(uint16_t key, uint32_t cap) {
  return mqttb_pidmap_home(key, cap);
}

static mqttb_pidmap_entry *find(const mqttb_pidmap *m, uint16_t key) {
  if (m->cap == 0 || key == 0)
    return NULL;
  uint32_t mask = m->cap - 1;
  for (uint32_t i = home(key, m->cap);; i = (i + 1) & mask) {
    mqttb_pidmap_entry *e = &m->e[i];
    if (e->key == key)
      return e;
    if (e->key == 0)
      return NULL;
  }
}

static void insert(mqttb_pidmap_entry *tab, uint32_t cap, mqttb_pidmap_entry src) {
  uint32_t mask = cap - 1;
  uint32_t i = home(src.key, cap);
  while (tab[i].key)
    i = (i + 1) & mask;
  tab[i] = src;
}

int mqttb_pidmap_put(mqttb_pidmap *m, const mqttb_mem *mem, uint16_t key, uint32_t val) {
  /* Load factor at most 1/2, so probe runs stay short; 65535 keys (the
   * most there can be) take 1 MiB. */
  if ((uint64_t)(m->count + 1) * 2 > m->cap) {
    uint32_t ncap = m->cap ? m->cap * 2 : 8;
    mqttb_pidmap_entry *tab = mqttb_mem_calloc(mem, ncap, sizeof(*tab));
    if (!tab)
      return MQTTB_ERR_NOMEM;
    for (uint32_t i = 0; i < m->cap; i++)
      if (m->e[i].key)
        insert(tab, ncap, m->e[i]);
    mqttb_mem_free(mem, m->e);
    m->e = tab;
    m->cap = ncap;
  }
  mqttb_pidmap_entry ne = {key, val};
  insert(m->e, m->cap, ne);
  m->count++;
  return 0;
}

bool mqttb_pidmap_del(mqttb_pidmap *m, uint16_t key) {
  mqttb_pidmap_entry *e = find(m, key);
  if (!e)
    return false;
  uint32_t mask = m->cap - 1;
  uint32_t hole = (uint32_t)(e - m->e);
  /* Backward-shift: move later entries of the probe run into the hole when
   * their home slot does not lie strictly between the hole and them. */
  for (uint32_t j = (hole + 1) & mask; m->e[j].key; j = (j + 1) & mask) {
    uint32_t h = home(m->e[j].key, m->cap);
    if (((j - h) & mask) >= ((j - hole) & mask)) {
      m->e[hole] = m->e[j];
      hole = j;
    }
  }
  m->e[hole].key = 0;
  m->count--;
  return true;
}

void mqttb_pidmap_free(mqttb_pidmap *m, const mqttb_mem *mem) {
  mqttb_mem_free(mem, m->e);
  m->e = NULL;
  m->cap = m->count = 0;
}

uint32_t mqttb_pidmap_probes(const mqttb_pidmap *m, uint16_t key) {
  const mqttb_pidmap_entry *e = find(m, key);
  if (!e)
    return 0;
  uint32_t i = (uint32_t)(e - m->e);
  return ((i - home(key, m->cap)) & (m->cap - 1)) + 1;
}
