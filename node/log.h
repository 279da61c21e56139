/* log.h - one line per event to stderr, with time, level and node id. */
#ifndef LORA_NODE_LOG_H
#define LORA_NODE_LOG_H

#include <stdint.h>

#include "config.h"

void node_log_init(uint64_t node_id, enum node_log_level level);
void node_log(enum node_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define LOG_DEBUG(...) node_log(NODE_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  node_log(NODE_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...)  node_log(NODE_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) node_log(NODE_LOG_ERROR, __VA_ARGS__)

#endif
