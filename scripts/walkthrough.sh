#!/usr/bin/env bash
# scripts/walkthrough.sh: the statelab lesson with plain curl.
#
# The same story as `statelab walkthrough`, for those who want to see (and
# type) every command. It talks to servers YOU started, prints each command
# before it runs it, then the status, the headers that matter and the body,
# and checks that every answer is the one the lesson expects. It exits
# non-zero at the first answer that is not.
#
# Start the two servers first, each in its own terminal, with fixed secrets
# so that a restarted process accepts what the old one signed:
#
#   export STATELAB_SESSION_KEY=$(openssl rand -hex 32) STATELAB_JWT_SECRET=$(openssl rand -hex 32)
#   make run-stateful          # terminal 1: http://127.0.0.1:5001
#   make run-stateless         # terminal 2: http://127.0.0.1:5002
#   scripts/walkthrough.sh     # terminal 3
#
# Settings (environment variables):
#   STATEFUL_URL, STATELESS_URL  the two servers (default http://127.0.0.1:5001 and :5002)
#   RESTART_CMD       a command that restarts both servers, for step 3. Without it the
#                     script asks you to restart them by hand (in a terminal), or skips
#                     step 3 (when nobody is there to do it).
#   STATEFUL_LB_URL, STATELESS_LB_URL
#                     round-robin balancers in front of two or more replicas, for step 4,
#                     e.g. those of `make demo`: http://127.0.0.1:8001 and :8002.
#                     Without them step 4 is skipped.
#   DB                the shared database, for step 6 (default ./data/library.db; needs sqlite3)
#   N                 requests per credential when step 5 measures time (default 50)
#   JQ                the jq to pretty-print and read JSON with (default jq; optional:
#                     without it the script reads JSON with sed)
set -euo pipefail

STATEFUL_URL=${STATEFUL_URL:-http://127.0.0.1:5001}
STATELESS_URL=${STATELESS_URL:-http://127.0.0.1:5002}
STATEFUL_LB_URL=${STATEFUL_LB_URL:-}
STATELESS_LB_URL=${STATELESS_LB_URL:-}
RESTART_CMD=${RESTART_CMD:-}
DB=${DB:-./data/library.db}
N=${N:-50}
JQ=${JQ:-jq}

command -v curl >/dev/null || { echo "walkthrough.sh: this script needs curl" >&2; exit 1; }
HAVE_JQ=0
if command -v "$JQ" >/dev/null 2>&1; then HAVE_JQ=1; fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The request bodies, as a reader would type them.
ALICE='{"email":"alice@example.com","password":"wonderland"}'
BOB='{"email":"bob@example.com","password":"builder"}'
JSON='Content-Type: application/json'

# ---------------------------------------------------------------- helpers

step() { printf '\n\n=== Step %s\n' "$*"; }
say() { printf '\n%s\n' "$*" | fold -s -w 78; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

# setvar NAME VALUE: set a shell variable the next commands use, and show it.
setvar() {
	printf -v "$1" '%s' "$2"
	printf '%s=%s\n' "$1" "$2"
}

# call 'curl ...': print the command as written, run it, and print the
# status, the headers that matter and the body. Sets STATUS; the body is in
# $TMP/body, the headers in $TMP/headers.
call() {
	printf '\n$ %s\n' "$1"
	STATUS=$(eval "$1 -sS -o \"\$TMP/body\" -D \"\$TMP/headers\" -w '%{http_code}'") ||
		fail "curl could not reach the server (is it running? see the top of this script)"
	printf '< %s\n' "$STATUS"
	grep -iE '^(x-statelab-replica|set-cookie|www-authenticate):' "$TMP/headers" | tr -d '\r' | sed 's/^/< /' || true
	if [ -s "$TMP/body" ]; then
		if [ "$HAVE_JQ" = 1 ]; then
			"$JQ" -c . "$TMP/body" | sed 's/^/< /'
		else
			sed 's/^/< /' "$TMP/body"
		fi
	fi
}

# field NAME: a field of the last answer's data (or of the answer itself).
field() {
	if [ "$HAVE_JQ" = 1 ]; then
		"$JQ" -r --arg f "$1" '(.data | objects | .[$f]) // .[$f] // empty' "$TMP/body"
	else
		sed -n -e "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" -e "t" -e "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" "$TMP/body" | head -n 1
	fi
}

# expect STATUS [CODE]: the last answer must have this status (and error code).
expect() {
	local code
	code=$(field code)
	if [ "$STATUS" != "$1" ] || { [ -n "${2:-}" ] && [ "$code" != "$2" ]; }; then
		fail "expected $1${2:+ $2}, got $STATUS${code:+ $code}"
	fi
}

# session_cookie: the session id the last answer set.
session_cookie() {
	tr -d '\r' <"$TMP/headers" | sed -n 's/^[Ss]et-[Cc]ookie: session_id=\([^;]*\);.*/\1/p' | head -n 1
}

# wait_up URL: poll a server's health until it answers, for up to 30 s.
wait_up() {
	for _ in $(seq 150); do
		if curl -fsS -o /dev/null "$1/api/health" 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	fail "$1 did not come back within 30 s"
}

# ---------------------------------------------------------------- the lesson

cat <<EOF
statelab walkthrough with curl
  stateful server:  $STATEFUL_URL
  stateless server: $STATELESS_URL
  JSON shown with:  $([ "$HAVE_JQ" = 1 ] && echo "$JQ" || echo "cat (no jq found; it is optional)")
EOF
wait_up "$STATEFUL_URL"
wait_up "$STATELESS_URL"

step "1: Stateful: the server remembers you"
say "Log in. The cookie carries only a signed session id; the session (who you are, your cart) lives in the server process's memory."
call 'curl -H "$JSON" -d "$ALICE" "$STATEFUL_URL/api/auth/login"'
expect 200
setvar COOKIE "$(session_cookie)"
[ -n "$COOKIE" ] || fail "the login set no session_id cookie"
say "From now on only the cookie goes back; the server looks the session up."
call 'curl -H "Cookie: session_id=$COOKIE" "$STATEFUL_URL/api/me"'
expect 200
say "Put two books in the cart, which the server keeps in the session."
call 'curl -H "Cookie: session_id=$COOKIE" -H "$JSON" -d "{\"book_id\": 1}" "$STATEFUL_URL/api/cart/items"'
expect 201
call 'curl -H "Cookie: session_id=$COOKIE" -H "$JSON" -d "{\"book_id\": 2}" "$STATEFUL_URL/api/cart/items"'
expect 201
call 'curl -H "Cookie: session_id=$COOKIE" "$STATEFUL_URL/api/cart"'
expect 200
[ "$(field count)" = 2 ] || fail "the cart holds $(field count) books, not 2"
ok "the server holds a cart of 2 books for this cookie"

step "2: Stateless: every request brings its own credentials"
say "An API key: a random secret the server stores only as a hash, in the shared database."
call 'curl -H "$JSON" -d "$BOB" "$STATELESS_URL/api/auth/generate-key"'
expect 201
setvar KEY "$(field api_key)"
setvar KEY_ID "$(field key_id)"
say "A JWT: a signed statement of who bob is, until when. The server stores nothing for it."
call 'curl -H "$JSON" -d "$BOB" "$STATELESS_URL/api/auth/token"'
expect 200
setvar JWT "$(field access_token)"
say "Who am I, with each. No cookie, no session: the Authorization header is all the server needs."
call 'curl -H "Authorization: Bearer $KEY" "$STATELESS_URL/api/me"'
expect 200
call 'curl -H "Authorization: Bearer $JWT" "$STATELESS_URL/api/me"'
expect 200
say "Bob's cart lives here, in the client, as a list. Nothing goes to the server until he borrows."
setvar CART '{"book_ids": [3, 4]}'

step "3: Restart both servers"
restarted=0
if [ -n "$RESTART_CMD" ]; then
	printf '\n$ %s\n' "$RESTART_CMD"
	eval "$RESTART_CMD" || fail "RESTART_CMD failed"
	restarted=1
elif [ -t 0 ]; then
	say "Now restart BOTH servers: Ctrl-C each one and start it again, with the same secrets. Predict first: what will alice's GET /api/me get, 200, 401 session_lost, 401 invalid_session or 401 login_required? How many of bob's two credentials will still work? Press Enter when both are back."
	read -r _
	restarted=1
else
	say "Skipped: nobody is at a terminal to restart the servers, and RESTART_CMD is not set. Try it by hand: restart both, then repeat the /api/me requests above."
fi
if [ "$restarted" = 1 ]; then
	wait_up "$STATEFUL_URL"
	wait_up "$STATELESS_URL"
	call 'curl -H "Cookie: session_id=$COOKIE" "$STATEFUL_URL/api/me"'
	if [ "$STATUS" = 401 ] && [ "$(field code)" = invalid_session ]; then
		fail "invalid_session: the restarted stateful server signs cookies with another key. Start it with STATELAB_SESSION_KEY set (see the top of this script), so the cookie fails for the reason the lesson is about: the session is gone, not the signature."
	fi
	expect 401 session_lost
	call 'curl -H "Cookie: session_id=$COOKIE" "$STATEFUL_URL/api/cart"'
	expect 401 session_lost
	ok "the cookie is genuine, but the new process holds no session for it: the cart is gone"
	call 'curl -H "Authorization: Bearer $KEY" "$STATELESS_URL/api/me"'
	expect 200
	call 'curl -H "Authorization: Bearer $JWT" "$STATELESS_URL/api/me"'
	if [ "$STATUS" = 401 ]; then
		fail "the JWT was refused after the restart: the stateless server signs with a new random secret. Start it with STATELAB_JWT_SECRET set (see the top of this script)."
	fi
	expect 200
	ok "the API key and the JWT still work: nothing they need was in the old process"
fi
say "Alice logs in again, and her cart starts empty: the books she chose are gone."
call 'curl -H "$JSON" -d "$ALICE" "$STATEFUL_URL/api/auth/login"'
expect 200
setvar COOKIE "$(session_cookie)"
call 'curl -H "Cookie: session_id=$COOKIE" "$STATEFUL_URL/api/cart"'
expect 200
[ "$(field count)" = 0 ] || fail "a fresh login's cart holds $(field count) books, not 0"
say "Bob's cart was never on the server. He borrows it, whole, in one request."
call 'curl -H "Authorization: Bearer $JWT" -H "$JSON" -d "$CART" "$STATELESS_URL/api/borrows"'
expect 201
if [ "$HAVE_JQ" = 1 ]; then
	BORROWS=$("$JQ" -r '.data[].id' "$TMP/body" | tr '\n' ' ')
else
	BORROWS=$(grep -o '"id":[0-9]*,"book_id"' "$TMP/body" | sed 's/[^0-9]//g' | tr '\n' ' ')
fi
setvar BORROWS "$BORROWS"

step "4: Two replicas behind a round-robin balancer"
if [ -n "$STATEFUL_LB_URL" ] && [ -n "$STATELESS_LB_URL" ]; then
	say "Credentials from the balancers themselves (they may front another database). Ten requests each; watch which replica answers."
	call 'curl -H "$JSON" -d "$ALICE" "$STATEFUL_LB_URL/api/auth/login"'
	expect 200
	setvar LB_COOKIE "$(session_cookie)"
	call 'curl -H "$JSON" -d "$BOB" "$STATELESS_LB_URL/api/auth/token"'
	expect 200
	setvar LB_JWT "$(field access_token)"
	for side in stateful stateless; do
		if [ "$side" = stateful ]; then
			url=$STATEFUL_LB_URL auth="Cookie: session_id=$LB_COOKIE"
			printf '\n$ for i in $(seq 10); do curl -H "Cookie: session_id=$LB_COOKIE" "$STATEFUL_LB_URL/api/me"; done\n'
		else
			url=$STATELESS_LB_URL auth="Authorization: Bearer $LB_JWT"
			printf '\n$ for i in $(seq 10); do curl -H "Authorization: Bearer $LB_JWT" "$STATELESS_LB_URL/api/me"; done\n'
		fi
		good=0
		for i in $(seq 10); do
			code=$(curl -sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -H "$auth" "$url/api/me")
			replica=$(tr -d '\r' <"$TMP/headers" | sed -n 's/^[Xx]-[Ss]tatelab-[Rr]eplica: //p')
			outcome=ok
			if [ "$code" = 200 ]; then good=$((good + 1)); else outcome=$(field code); fi
			printf '  %2d  %-12s %s %s\n' "$i" "$replica" "$code" "$outcome"
		done
		echo "$side: $good of 10 succeeded"
		if [ "$side" = stateless ] && [ "$good" != 10 ]; then
			fail "a stateless request failed behind the balancer"
		fi
		if [ "$side" = stateful ] && [ "$good" = 10 ]; then
			say "All ten landed where the session is: is there only one replica behind the balancer, or is it sticky?"
		fi
	done
	ok "stateless: any replica answers any request; stateful: only the replica that holds the session"
else
	say "Skipped: set STATEFUL_LB_URL and STATELESS_LB_URL to balancers in front of two or more replicas, e.g. run 'make demo' and use http://127.0.0.1:8001 and http://127.0.0.1:8002."
fi

step "5: What statelessness costs"
say "GET /api/me with each credential: the bytes the request sends (curl's size_request: request line and headers) and a quick mean of curl's time_total over N requests on one connection. Measured, not claimed. First the same request with no credential at all (answered 401): what every request costs anyway."
printf '  %-7s %4s bytes per request\n' none "$(curl -sS -o /dev/null -w '%{size_request}' "$STATELESS_URL/api/me")"
for cred in cookie key jwt; do
	case $cred in
	cookie) url=$STATEFUL_URL auth="Cookie: session_id=$COOKIE" ;;
	key) url=$STATELESS_URL auth="Authorization: Bearer $KEY" ;;
	jwt) url=$STATELESS_URL auth="Authorization: Bearer $JWT" ;;
	esac
	size=$(curl -sS -o /dev/null -w '%{size_request}' -H "$auth" "$url/api/me")
	# N requests in one curl, on one kept-alive connection; the mean of their times.
	args=()
	for _ in $(seq "$N"); do args+=(-o /dev/null "$url/api/me"); done
	mean=$(curl -sS -w '%{time_total}\n' -H "$auth" "${args[@]}" | awk '{s += $1} END {printf "%.3f", s / NR * 1000}')
	printf '  %-7s %4s bytes per request, %s ms per request (mean of %s)\n' "$cred" "$size" "$mean" "$N"
done
say "Revocation. Logging out deletes the session on the server: dead at once."
call 'curl -X POST -H "Cookie: session_id=$COOKIE" "$STATEFUL_URL/api/auth/logout"'
expect 200
call 'curl -H "Cookie: session_id=$COOKIE" "$STATEFUL_URL/api/me"'
expect 401
say "Revoking an API key deletes its row in the shared database, which every request checks: dead at once."
call 'curl -X DELETE -H "Authorization: Bearer $KEY" "$STATELESS_URL/api/auth/keys/$KEY_ID"'
expect 200
call 'curl -H "Authorization: Bearer $KEY" "$STATELESS_URL/api/me"'
expect 401 invalid_token
say "And the JWT, issued to the same account? It is checked by signature and expiry alone."
call 'curl -H "Authorization: Bearer $JWT" "$STATELESS_URL/api/me"'
expect 200
payload=$(printf '%s' "$JWT" | cut -d. -f2 | tr '_-' '/+')
while [ $((${#payload} % 4)) != 0 ]; do payload="$payload="; done
printf '\n$ echo "$JWT" | cut -d. -f2 | base64 -d     # no secret needed to read it\n'
claims=$(printf '%s' "$payload" | base64 -d 2>/dev/null || printf '%s' "$payload" | base64 -D)
echo "$claims"
exp=$(printf '%s' "$claims" | sed -n 's/.*"exp":\([0-9]*\).*/\1/p')
ok "the JWT is still valid, and stays so until exp=$exp ($(date -u -d "@$exp" 2>/dev/null || date -u -r "$exp" 2>/dev/null || echo "seconds since 1970")): it cannot be revoked"

step "6: Where the state went"
say "The stateless server keeps resource state (books, borrows, members, API keys) in the shared database. What it does not keep is application state: where each client is in its conversation. The stateful server kept that in memory."
if command -v sqlite3 >/dev/null && [ -f "$DB" ]; then
	for q in \
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name" \
		"SELECT b.id, k.title, m.email FROM borrows b JOIN books k ON k.id = b.book_id JOIN members m ON m.id = b.member_id WHERE b.returned_at IS NULL ORDER BY b.id"; do
		printf '\n$ sqlite3 -readonly "$DB" "%s"\n' "$q"
		sqlite3 -readonly "$DB" "$q"
	done
	ok "no sessions table, no carts table: bob's borrows are rows; his JWT is nowhere"
else
	say "(No sqlite3, or no database at DB=$DB.) Try: sqlite3 -readonly data/library.db \".tables\" - there is no sessions table and no carts table."
fi
printf '\n$ curl -s "$STATEFUL_URL/metrics" | grep ^statelab_sessions_active\n'
curl -sS "$STATEFUL_URL/metrics" | grep '^statelab_sessions_active' || true

step "7: Clean up, and watch it at scale"
say "Return bob's books, so the library is as the script found it."
for id in $BORROWS; do
	setvar id "$id"
	call 'curl -X POST -H "Authorization: Bearer $JWT" "$STATELESS_URL/api/borrows/$id/return"'
	expect 200
done
say "Next: 'make demo' runs replicas of both servers behind balancers, simulated users, and restarts, a crash and scaling on both sides; open http://127.0.0.1:8080/ and watch session_lost on the stateful side only."
printf '\nAll checks passed.\n'
