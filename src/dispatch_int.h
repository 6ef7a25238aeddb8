/* SPDX-License-Identifier: MIT */
/*
 * dispatch_int: the checks of data read from Redis (dispatch_data.c) as
 * dispatch.c calls them. Private to the two files.
 */
#ifndef DD_DISPATCH_INT_H
#define DD_DISPATCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "route.h"

/* A courier or parcel hash that exists but holds invalid data: a warning,
 * rate limited. kind is "parcel" or "courier", field the bad field. */
void dd_dispatch_log_fleet_invalid(const dd_dispatch_item_t *it,
                                   const char *kind, const char *id,
                                   const char *field);

/* Hands stored result bytes (transferred from *bytes) to the item when
 * they are a valid result of its request; otherwise frees them, marks the
 * item as a store data error and logs it, rate limited. */
void dd_dispatch_take_stored(dd_dispatch_item_t *it, char **bytes, size_t len);

/* After RT2: 1 when secs (what the ETA cache gave for key, or < 0 for a
 * miss or an error) is usable for the leg; 0 when it is a value the route
 * model cannot give (within the vehicle's maximum, 0 exactly between a
 * cell and itself), which is logged, rate limited. */
int dd_dispatch_eta_check(const dd_dispatch_item_t *it, const char *key,
                          dd_vehicle_t vehicle, const char *from,
                          const char *to, int64_t secs);

#endif /* DD_DISPATCH_INT_H */
