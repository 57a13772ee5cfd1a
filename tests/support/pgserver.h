/*
 * pgserver.h - a throwaway PostgreSQL server for tests: initdb in a fresh directory under
 * /tmp, a free loopback port, pg_ctl start (fsync off), and rm -rf at the end. As root it runs
 * the server as the `postgres` account of Debian's package, since PostgreSQL refuses root.
 * Nothing is skipped: when the server cannot start, start() prints why and the server's log
 * and fails. PG_BINDIR overrides where initdb and pg_ctl are (default
 * /usr/lib/postgresql/15/bin, then `pg_config --bindir`).
 */
#ifndef RN_TEST_PGSERVER_H
#define RN_TEST_PGSERVER_H

/* Starts the server; 0 and the libpq conninfo of its `postgres` database (user runnel), or -1. */
int rn_pg_start(char *conninfo, unsigned long len);
/* Stops it (immediate) and removes its directory. Safe when start failed or never ran. */
void rn_pg_stop(void);

#endif
