/* Host test harness of ${unit} (edgeae.codegen.build): raw samples on stdin, raw outputs on
   stdout; odd samples run on the caller's arena, even ones on the static one. */
#include <stdio.h>
#include "${unit}.h"

${buffers}
static float arena_f[(${up}_ARENA_BYTES + 3) / 4 + 1];

int main(void)
{
    long k = 0;
    while (${reads}) {
        int rc = (k & 1) ? ${unit}_arena(${args}, arena_f) : ${unit}(${args});
        if (rc != 0) return 2;
        ${writes}
        ++k;
    }
    return 0;
}
