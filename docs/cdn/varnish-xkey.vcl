# docs/cdn/varnish.vcl with purge by tag: Varnish indexes each stored object by the cache
# tags servestatic sends (SERVESTATIC_CACHE_TAG_HEADER), through the xkey vmod of
# varnish-modules (Debian: `apt install varnish-modules`), and a PURGE carrying an `xkey`
# header removes every object with any of the tags it names:
#
#   curl -X PURGE -H "xkey: release-0123456789abcdef" http://varnish.internal/
#
# Load this file (`varnishd -f /etc/varnish/servestatic-xkey.vcl`) with servestatic.vcl, the
# recipe, beside it; docs/cdn.md ("Purge by tag") explains it, tests/test_cdn.py runs it.
# Its subroutines run before the recipe's (Varnish joins subroutines of the same name in
# the order it reads them), so they come before the include at the end.
vcl 4.1;

import xkey;

sub vcl_recv {
    if (req.method == "PURGE" && req.http.xkey) {
        if (client.ip !~ purgers) {
            return (synth(405, "PURGE not allowed"));
        }
        # Hard purge: the next request for each object is a miss, a full fetch at the origin.
        # (xkey.softpurge would keep them for grace and revalidation instead.)
        return (synth(200, "Invalidated " + xkey.purge(req.http.xkey) + " objects"));
    }
}

sub vcl_backend_response {
    # xkey indexes an object by its `xkey` header (tags separated by spaces or commas):
    # copy whichever tag header servestatic sends.
    if (beresp.http.Cache-Tag) {
        set beresp.http.xkey = beresp.http.Cache-Tag;
    } elsif (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    } elsif (beresp.http.Edge-Cache-Tag) {
        set beresp.http.xkey = beresp.http.Edge-Cache-Tag;
    }
}

sub vcl_deliver {
    unset resp.http.xkey;
}

include "./servestatic.vcl";
