"""Expressions and policies that run away, shared by the evaluation-budget tests."""

DIGITS = "[0,1,2,3,4,5,6,7,8,9]"
# Ten million additions in seven nested comprehensions: well over a minute of one core in
# the CEL runtime, uninterruptible, for 240 characters (six levels, ten seconds, finished
# inside a wide budget on a fast machine).
RUNAWAY_EXPRESSION = (
    f"{DIGITS}.map(a, {DIGITS}.map(b, {DIGITS}.map(c, {DIGITS}.map(d, {DIGITS}.map(e, "
    f"{DIGITS}.map(f, {DIGITS}.map(g, a + b + c + d + e + f + g))))))).size()"
)
# A 50-character string quadrupled fourteen times: 13 GB if nothing stops it.
GREEDY_EXPRESSION = '["' + "x" * 50 + '"]' + ".map(s, s + s + s + s)" * 14 + ".size()"
