# Varnish in front of servestatic (Varnish 6.0 and later; tested with Debian's 7.1).
# docs/cdn.md explains each part; tests/test_cdn.py runs this file as it is,
# with only the backend address below changed.
#
# What Varnish's built-in VCL would do with servestatic's responses, and what this
# file does instead:
# - it asks the origin for gzip on every miss, so brotli never reaches a client:
#   here each request is put in one of three classes (brotli and gzip, gzip, neither),
#   the origin is asked with that class, and the cache keeps one object per class;
# - it turns `Cache-Control: no-cache` (our HTML) into hit-for-miss, so every HTML
#   request is a full 200 at the origin: here HTML is stored with no freshness and
#   kept, so each request revalidates it with If-None-Match and the origin answers 304;
# - it serves objects up to 10 s past their max-age (default_grace): here only when
#   the origin allows it with stale-while-revalidate;
# - it answers 503 when the origin is down: here the last good copy is answered for as
#   long as the origin's stale-if-error allows (a day by default), HTML and 404s
#   included, from the first request that fails to revalidate it; once the health probe
#   below has seen the origin down (two failed probes, about 2 s), stale copies are
#   answered without trying it, and once it sees it back they are revalidated there again;
# - it ignores CDN-Cache-Control (RFC 9213): here, when the origin sends it
#   (SERVESTATIC_CDN_MAX_AGE), it decides how long a copy is kept, in place of Cache-Control.
vcl 4.1;

import std;

backend origin {
    .host = "127.0.0.1";
    .port = "8000";
}

# The same origin (give it the same address), watched by a health probe on servestatic's
# health endpoint (SERVESTATIC_HEALTH_PATH): healthy while 2 of the last 3 probes, one a
# second, were answered 200. Its health decides only whether a stale copy is answered
# (vcl_hit); requests are always sent to `origin`, which has no probe, so an origin that
# was just restarted (a deploy) is reached at once, not after the probe has seen it back.
backend origin_health {
    .host = "127.0.0.1"; .port = "8000";
    .probe = {
        .url = "/healthz";
        .interval = 1s;
        .timeout = 1s;
        .window = 3;
        .threshold = 2;
        .initial = 2;
    }
}

# Who may send PURGE (the deploy step's `servestatic diff` list): only this machine.
acl purgers {
    "localhost";
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    set req.backend_hint = origin;
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "PURGE not allowed"));
        }
        # Removes every variant (every encoding class) stored under this URL.
        return (purge);
    }

    # The encoding class: what the origin is asked for and what the cached copy
    # varies on. A coding with q=0 is refused (RFC 9110, section 12.5.3). On a restart
    # (vcl_hit) Varnish has already rewritten Accept-Encoding to gzip: the class found
    # on the first pass stands.
    if (req.restarts > 0 && req.http.X-Servestatic-Encoding) {
        # unchanged
    } elsif (req.http.Accept-Encoding ~ "(?i)(^|,)\s*br\s*(,|;|$)"
            && req.http.Accept-Encoding !~ "(?i)(^|,)\s*br\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$)"
            && req.http.Accept-Encoding ~ "(?i)(^|,)\s*gzip\s*(,|;|$)"
            && req.http.Accept-Encoding !~ "(?i)(^|,)\s*gzip\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$)") {
        set req.http.X-Servestatic-Encoding = "br, gzip";
    } elsif (req.http.Accept-Encoding ~ "(?i)(^|,)\s*gzip\s*(,|;|$)"
            && req.http.Accept-Encoding !~ "(?i)(^|,)\s*gzip\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$)") {
        set req.http.X-Servestatic-Encoding = "gzip";
    } else {
        set req.http.X-Servestatic-Encoding = "identity";
    }

    # --- Dictionary deltas (RFC 9842; docs/cdn.md, "Dictionary deltas"): a client that
    # accepts dcz by name and holds a dictionary gets it in X-Servestatic-Dictionary, on
    # which the cache varies only where the origin's Vary names Available-Dictionary
    # (vcl_backend_response): only paths that have deltas keep a copy per dictionary. Only a
    # fetch that may read the response whole gets a delta (RFC 9842): same-origin, no
    # Sec-Fetch-Mode, or a navigation; a cross-origin no-cors or cors fetch has no
    # dictionary here (a cors one would depend on the origin's CORS answer, not in the key).
    if (req.restarts == 0) {
        unset req.http.X-Servestatic-Dictionary;
        if (req.http.Available-Dictionary
                && req.http.Accept-Encoding ~ "(?i)(^|,)\s*dcz\s*(,|;|$)"
                && req.http.Accept-Encoding !~ "(?i)(^|,)\s*dcz\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$)"
                && (req.http.Sec-Fetch-Site == "same-origin" || !req.http.Sec-Fetch-Mode
                    || req.http.Sec-Fetch-Mode == "navigate" || req.http.Sec-Fetch-Mode == "same-origin")) {
            set req.http.X-Servestatic-Dictionary = req.http.Available-Dictionary;
        }
    }
    # --- end of dictionary deltas

    # Set only by this file, on a restart (vcl_hit, servestatic_stale_if_error): never by a client.
    if (req.restarts == 0) {
        unset req.http.X-Servestatic-Fresh;
        unset req.http.X-Servestatic-Stale;
    }
    if (req.http.X-Servestatic-Fresh) {
        # Only a fresh copy will do: a stale one (in grace) is revalidated at the origin.
        set req.grace = 0s;
    } elsif (req.http.X-Servestatic-Stale) {
        # Its revalidation failed: the copy's own grace again. req.grace outlives a
        # restart and cannot be unset; the lower of it and the copy's grace applies.
        set req.grace = 3650d;
    }

    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization) {
        return (pass);
    }
    # Unlike the built-in VCL, a Cookie does not bypass the cache: whether a response
    # may be stored is the origin's to say (Cache-Control, Set-Cookie, Vary: Cookie),
    # and servestatic's files never depend on cookies.
    return (hash);
}

sub vcl_backend_fetch {
    # Varnish has set Accept-Encoding to gzip here; ask for the client's class instead.
    set bereq.http.Accept-Encoding = bereq.http.X-Servestatic-Encoding;
    # Dictionary deltas: the origin is asked for one only with the dictionary the copy is
    # kept for; vcl_recv has applied the Sec-Fetch rule already.
    if (bereq.http.X-Servestatic-Dictionary) {
        set bereq.http.Accept-Encoding = "dcz, " + bereq.http.X-Servestatic-Encoding;
        set bereq.http.Available-Dictionary = bereq.http.X-Servestatic-Dictionary;
    } else {
        unset bereq.http.Available-Dictionary;
    }
    unset bereq.http.Sec-Fetch-Mode;
    unset bereq.http.Sec-Fetch-Site;
}

sub vcl_backend_response {
    if (beresp.status >= 500 && (bereq.is_bgfetch || bereq.http.X-Servestatic-Fresh)) {
        # The origin fails while a stale copy is answered, or as one is revalidated: keep
        # the copy, storing nothing over it (vcl_backend_error); the client gets it
        # (servestatic_stale_if_error).
        return (abandon);
    }

    # Vary on the class rather than on the raw Accept-Encoding, which Varnish rewrites
    # and which browsers spell in many ways: one object per class, so one origin fetch
    # per encoding. vcl_deliver puts Accept-Encoding back.
    if (beresp.http.Vary) {
        set beresp.http.Vary = regsuball(beresp.http.Vary, "(?i)\bAccept-Encoding\b",
                                         "X-Servestatic-Encoding");
        # Dictionary deltas: one copy per dictionary, on the paths that vary on it only.
        set beresp.http.Vary = regsuball(beresp.http.Vary, "(?i)\bAvailable-Dictionary\b",
                                         "X-Servestatic-Dictionary");
    }

    # CDN-Cache-Control (RFC 9213; SERVESTATIC_CDN_MAX_AGE) is this cache's Cache-Control
    # when the origin sends it: HTML kept for its max-age rather than revalidated on every
    # request, while browsers still get Cache-Control's no-cache. The deploy purges what
    # changed (docs/cdn.md). Its stale-if-error is the grace, as servestatic_grace does below.
    if (beresp.http.CDN-Cache-Control ~ "(?i)(^|[ ,])max-age=[0-9]+"
            && beresp.http.CDN-Cache-Control !~ "(?i)(no-store|private)"
            && !beresp.http.Set-Cookie && beresp.http.Vary != "*") {
        set beresp.ttl = std.duration(regsub(beresp.http.CDN-Cache-Control,
            "(?i)^(.*[ ,])?max-age=([0-9]+).*$", "\2s"), 0s);
        set beresp.grace = std.duration(regsub(beresp.http.CDN-Cache-Control,
            "(?i)^(.*[ ,])?stale-if-error=([0-9]+).*$", "\2s"), 0s);
        if (beresp.http.ETag || beresp.http.Last-Modified) {
            set beresp.keep = 1d;
        }
        return (deliver);
    }

    if (beresp.http.Set-Cookie || beresp.http.Cache-Control ~ "(?i)(no-store|private)"
            || beresp.http.Vary == "*") {
        # Never stored; the built-in VCL's hit-for-miss, so requests are not queued.
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
        return (deliver);
    }

    if (beresp.http.Cache-Control ~ "(?i)no-cache"
            && (beresp.http.ETag || beresp.http.Last-Modified)) {
        # Stored but stale at once: every later request is a conditional request to
        # the origin (If-None-Match from the kept copy), answered 304 while unchanged.
        # Not 0s: Varnish never looks up an object whose TTL is 0, kept or not.
        set beresp.ttl = 0.001s;
        call servestatic_grace;
        set beresp.keep = 1d;
        return (deliver);
    }

    if (!beresp.http.Cache-Control && !beresp.http.Expires) {
        # The origin said nothing about caching (a response of your own app):
        # do not guess a lifetime for it.
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
        return (deliver);
    }

    # Fresh for the origin's max-age, then revalidated with its validators.
    call servestatic_grace;
    if (beresp.http.ETag || beresp.http.Last-Modified) {
        set beresp.keep = 1d;
    }
    return (deliver);
}

# How long a stale copy is kept for answering: the longer of the origin's
# stale-while-revalidate (answered while a fresh copy is fetched, vcl_hit) and
# stale-if-error (answered while the probe says the origin is down); 0 without either.
sub servestatic_grace {
    set beresp.grace = 0s;
    if (beresp.http.Cache-Control ~ "(?i)(^|[ ,])stale-while-revalidate=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control,
            "(?i)^(.*[ ,])?stale-while-revalidate=([0-9]+).*$", "\2s"), 0s);
    }
    if (beresp.http.Cache-Control ~ "(?i)(^|[ ,])stale-if-error=[0-9]+"
            && std.duration(regsub(beresp.http.Cache-Control,
                   "(?i)^(.*[ ,])?stale-if-error=([0-9]+).*$", "\2s"), 0s) > beresp.grace) {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control,
            "(?i)^(.*[ ,])?stale-if-error=([0-9]+).*$", "\2s"), 0s);
    }
}

sub vcl_hit {
    # A stale copy past what stale-while-revalidate allows (all of it for HTML) while the
    # origin is up: revalidate it there, by a restart that looks up fresh copies only
    # (vcl_recv). While the origin is down, the copy is answered for as long as it is
    # in grace (stale-if-error), and the background fetch Varnish starts fails quietly.
    # A copy whose revalidation has just failed (servestatic_stale_if_error) is answered:
    # the origin is down or failing, and the probe has not seen it yet.
    if (req.http.X-Servestatic-Stale) {
        return (deliver);
    }
    if (obj.ttl <= 0s && std.healthy(origin_health)
            && obj.ttl + std.duration(regsub(obj.http.Cache-Control,
                   "(?i)^(.*[ ,])?stale-while-revalidate=([0-9]+).*$", "\2s"), 0s) <= 0s) {
        set req.http.X-Servestatic-Fresh = "1";
        return (restart);
    }
}

sub vcl_backend_error {
    # The origin could not be reached while a stale copy was answered: keep the copy
    # rather than store this error over it.
    if (bereq.is_bgfetch) {
        return (abandon);
    }
    # A GET or HEAD that failed on its way to the origin (a connection the origin closed
    # as it restarted for a deploy, a connection reset) is tried once more on a new
    # connection before the client gets a 503. Varnish retries by itself only when a
    # reused connection fails before the first byte of the answer.
    if (bereq.retries == 0 && (bereq.method == "GET" || bereq.method == "HEAD")) {
        return (retry);
    }
}

# Revalidating a stale copy failed: the origin is down (a 503 from vcl_backend_error,
# through vcl_deliver) or answered 5xx (abandoned in vcl_backend_response: a 503 through
# vcl_synth). Answer the copy if it is still in its grace (stale-if-error) rather than the
# error, by a restart that looks it up again (vcl_recv, vcl_hit). A copy past its grace is
# not found then: the second fetch fails too, and its error is the answer.
sub servestatic_stale_if_error {
    if (resp.status >= 500 && req.http.X-Servestatic-Fresh && !req.http.X-Servestatic-Stale) {
        unset req.http.X-Servestatic-Fresh;
        set req.http.X-Servestatic-Stale = "1";
        return (restart);
    }
}

sub vcl_synth {
    call servestatic_stale_if_error;
}

sub vcl_deliver {
    call servestatic_stale_if_error;

    # Varnish adds Accept-Encoding to the Vary of gzip objects itself; say it once.
    if (resp.http.Vary ~ "X-Servestatic-Encoding") {
        set resp.http.Vary = regsuball(resp.http.Vary, "(?i)\s*,\s*Accept-Encoding\b|\bAccept-Encoding\s*,\s*", "");
        set resp.http.Vary = regsub(resp.http.Vary, "X-Servestatic-Encoding", "Accept-Encoding");
    }
    # Dictionary deltas: the client's own header name again.
    if (resp.http.Vary ~ "X-Servestatic-Dictionary") {
        set resp.http.Vary = regsub(resp.http.Vary, "X-Servestatic-Dictionary", "Available-Dictionary");
    }
}
