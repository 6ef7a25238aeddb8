# Extra link dependencies of unit tests (module names under src/, fake
# names under tests/fakes/). Default for test_<m>: <m>, util and log.
# UNIT_DEPS_test_<m>  = <module> ...
# UNIT_FAKES_test_<m> = <fake> ...
UNIT_DEPS_test_dispatch = dispatch codec route
UNIT_FAKES_test_dispatch = fake_store
UNIT_DEPS_test_http = metrics
UNIT_DEPS_test_consumer = offsets queue job kafka metrics
UNIT_DEPS_test_config = config_options config_value config_print redis_url
UNIT_DEPS_test_config_print = config config_options config_value redis_url
UNIT_DEPS_test_consumer += consumer_replay replay_range
UNIT_DEPS_test_consumer += consumer_rebalance consumer_pause
