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
#   the origin allows it with stale-while-revalidate.
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "8000";
}

# Who may send PURGE (the deploy step's `servestatic diff` list): only this machine.
acl purgers {
    "localhost";
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "PURGE not allowed"));
        }
        # Removes every variant (every encoding class) stored under this URL.
        return (purge);
    }

    # The encoding class: what the origin is asked for and what the cached copy
    # varies on. A coding with q=0 is refused (RFC 9110, section 12.5.3).
    if (req.http.Accept-Encoding ~ "(?i)(^|,)\s*br\s*(,|;|$)"
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
}

sub vcl_backend_response {
    # Vary on the class rather than on the raw Accept-Encoding, which Varnish rewrites
    # and which browsers spell in many ways: one object per class, so one origin fetch
    # per encoding. vcl_deliver puts Accept-Encoding back.
    if (beresp.http.Vary) {
        set beresp.http.Vary = regsuball(beresp.http.Vary, "(?i)\bAccept-Encoding\b",
                                         "X-Servestatic-Encoding");
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
        set beresp.grace = 0s;
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
    if (beresp.http.Cache-Control !~ "(?i)stale-while-revalidate") {
        set beresp.grace = 0s;
    }
    if (beresp.http.ETag || beresp.http.Last-Modified) {
        set beresp.keep = 1d;
    }
    return (deliver);
}

sub vcl_deliver {
    # Varnish adds Accept-Encoding to the Vary of gzip objects itself; say it once.
    if (resp.http.Vary ~ "X-Servestatic-Encoding") {
        set resp.http.Vary = regsuball(resp.http.Vary, "(?i)\s*,\s*Accept-Encoding\b|\bAccept-Encoding\s*,\s*", "");
        set resp.http.Vary = regsub(resp.http.Vary, "X-Servestatic-Encoding", "Accept-Encoding");
    }
}
