/* SPDX-License-Identifier: MIT */
/*
 * config_value: the scalar value syntax of options, and nothing else:
 * integers, DURATION (250ms, 30s, 7d; stored in ms), booleans and
 * TIMESTAMP (ISO-8601 or @EPOCH_MS; stored as epoch ms), parsed from
 * strings and DURATION formatted back. Pure functions without errors
 * text: config.c names the option and the problem.
 */
#include "config_int.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest timestamp accepted: 9999-12-31T23:59:59.999Z. */
#define MAX_TS_MS 253402300799999LL

/* Decimal integer, optional '-', nothing else (no spaces, no '+'). */
int dd_config_parse_int(const char *s, int64_t *out) {
    char *end;
    long long v;

    if (!(isdigit((unsigned char)s[0]) ||
          (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return DD_ERR;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return DD_ERR;
    *out = v;
    return DD_OK;
}

/* Digits only (no sign), e.g. offsets, ports, epoch ms. */
int dd_config_parse_uint(const char *s, int64_t *out) {
    if (!isdigit((unsigned char)s[0]))
        return DD_ERR;
    return dd_config_parse_int(s, out);
}

/* INTEGER[ms|s|m|h|d], a bare integer meaning seconds; in ms. */
int dd_config_parse_duration(const char *s, int64_t *ms) {
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"ms", 1},
                 {"s", DD_CONFIG_SEC},
                 {"m", DD_CONFIG_MIN},
                 {"h", DD_CONFIG_HOUR},
                 {"d", DD_CONFIG_DAY},
                 {"", DD_CONFIG_SEC}};
    int64_t v = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return DD_ERR;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (INT64_MAX - 9) / 10)
            return DD_ERR;
        v = v * 10 + (*p - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mult)
                return DD_ERR;
            *ms = v * units[i].mult;
            return DD_OK;
        }
    }
    return DD_ERR;
}

/* The largest unit that represents ms exactly: 7d, 1h, 1500ms, 0s. */
const char *dd_config_fmt_duration(int64_t ms, char *buf, size_t size) {
    if (ms == 0)
        snprintf(buf, size, "0s");
    else if (ms % DD_CONFIG_DAY == 0)
        snprintf(buf, size, "%" PRId64 "d", ms / DD_CONFIG_DAY);
    else if (ms % DD_CONFIG_HOUR == 0)
        snprintf(buf, size, "%" PRId64 "h", ms / DD_CONFIG_HOUR);
    else if (ms % DD_CONFIG_MIN == 0)
        snprintf(buf, size, "%" PRId64 "m", ms / DD_CONFIG_MIN);
    else if (ms % DD_CONFIG_SEC == 0)
        snprintf(buf, size, "%" PRId64 "s", ms / DD_CONFIG_SEC);
    else
        snprintf(buf, size, "%" PRId64 "ms", ms);
    return buf;
}

int dd_config_parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return DD_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return DD_OK;
        }
    }
    return DD_ERR;
}

/* Exactly n digits at s into *out. */
static int digits(const char *s, int n, int *out) {
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return DD_ERR;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return DD_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so no timegm() and no TZ dependence. */
static int64_t days_from_civil(int y, int m, int d) {
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return days[m - 1] + (m == 2 && leap);
}

/* TIMESTAMP: @EPOCH_MS, or YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM);
 * epoch ms in 0..MAX_TS_MS. */
int dd_config_parse_timestamp(const char *s, int64_t *ms) {
    int y, mo, d, h, mi, sec, frac = 0, tz = 0;
    int64_t v;

    if (s[0] == '@') {
        if (dd_config_parse_uint(s + 1, &v) != DD_OK || v > MAX_TS_MS)
            return DD_ERR;
        *ms = v;
        return DD_OK;
    }
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
        s[16] != ':' || digits(s + 17, 2, &sec))
        return DD_ERR;
    s += 19;
    if (*s == '.') {
        int n = 0;
        for (s++; isdigit((unsigned char)*s); s++, n++) {
            if (n < 3)
                frac = frac * 10 + (*s - '0');
        }
        if (n == 0 || n > 9)
            return DD_ERR;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int th, tm;
        if (digits(s + 1, 2, &th) || s[3] != ':' || digits(s + 4, 2, &tm) ||
            th > 23 || tm > 59)
            return DD_ERR;
        tz = (th * 60 + tm) * (*s == '-' ? -1 : 1);
        s += 6;
    } else {
        return DD_ERR;
    }
    if (*s != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return DD_ERR;
    v = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
        (int64_t)tz * 60;
    v = v * 1000 + frac;
    if (v < 0 || v > MAX_TS_MS)
        return DD_ERR;
    *ms = v;
    return DD_OK;
}
