# SPDX-License-Identifier: MIT
"""Setting up poison for the system tests: the size limits of a topic
(topic configs set and waited for until the broker shows them) and the ETA
cache key of a leg, with the geohash cell of a position computed as
dispatchd computes it (src/route.c), so a test can plant a bad cached ETA."""
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from conftest import wait_for

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def set_topic_config(brokers, topic, **cfg):
    """Set topic configs (dots as underscores) and wait until they show."""
    admin = AdminClient({"bootstrap.servers": brokers})
    entries = [ConfigEntry(k.replace("_", "."), str(v),
                           incremental_operation=AlterConfigOpType.SET)
               for k, v in cfg.items()]
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    for f in admin.incremental_alter_configs([res]).values():
        f.result(timeout=30)

    def applied():
        desc = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        got = list(desc.values())[0].result(timeout=10)
        return all(got[k.replace("_", ".")].value == str(v) for k, v in cfg.items())
    wait_for(applied, 30, f"config of {topic}")


def cell(lat, lon, precision=7):
    """The geohash cell of a position, as dispatchd computes it."""
    lat_r, lon_r = [-90.0, 90.0], [-180.0, 180.0]
    lat, lon = float(lat), float(lon)
    out, bits, ch, even = "", 0, 0, True
    while len(out) < precision:
        rng, v = (lon_r, lon) if even else (lat_r, lat)
        mid = (rng[0] + rng[1]) / 2
        ch <<= 1
        if v >= mid:
            ch |= 1
            rng[0] = mid
        else:
            rng[1] = mid
        even = not even
        bits += 1
        if bits == 5:
            out += BASE32[ch]
            bits, ch = 0, 0
    return out


def eta_key(vehicle, src, dst):
    """The ETA cache key of the leg from position src to position dst
    ((lat, lon) pairs) for a vehicle."""
    return f"eta:v1:{vehicle}:{cell(*src)}:{cell(*dst)}"
