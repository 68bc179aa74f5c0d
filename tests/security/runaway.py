"""Expressions and policies that run away, shared by the evaluation-budget tests."""

DIGITS = "[0,1,2,3,4,5,6,7,8,9]"
# A million additions in six nested comprehensions: about ten seconds of one core in the
# CEL runtime, uninterruptible, for 200 characters.
RUNAWAY_EXPRESSION = (
    f"{DIGITS}.map(a, {DIGITS}.map(b, {DIGITS}.map(c, {DIGITS}.map(d, {DIGITS}.map(e, "
    f"{DIGITS}.map(f, a + b + c + d + e + f)))))).size()"
)
# A 50-character string quadrupled fourteen times: 13 GB if nothing stops it.
GREEDY_EXPRESSION = '["' + "x" * 50 + '"]' + ".map(s, s + s + s + s)" * 14 + ".size()"
