#!/bin/sh
# First start: a cluster in $PGDATA (password auth over TCP), the app's database and its table.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    "$bin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "CREATE DATABASE $POSTGRES_DB;" | "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
    "$bin/postgres" --single -D "$PGDATA" "$POSTGRES_DB" >/dev/null <<SQL
CREATE TABLE greetings (id integer PRIMARY KEY, message text NOT NULL);
INSERT INTO greetings VALUES (1, 'hello from postgres');
SQL
    echo "db: initialised $PGDATA (database $POSTGRES_DB)"
fi
exec "$bin/postgres" -D "$PGDATA"
