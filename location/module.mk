LOC_SRCS += location/loc_shm.c location/loc_shm_conn.c location/loc_redis.c location/loc_recon.c location/loc_codec.c location/loc_sync.c location/loc_shard.c location/loc.c
