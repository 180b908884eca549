#!/bin/sh
# The build macro-benchmark: Debian's tcc compiles and links Linux's kconfig
# (`conf`: nine C files, 12,000 lines, with its generated parser and lexer)
# against glibc, ROUNDS times from clean. The sources and the headers the
# build reads were copied from the host into the initramfs by xtask.
# __STDC_NO_VLA__: tcc 0.9.27 cannot parse glibc 2.36's <regex.h> otherwise.
set -e
rounds=${1:?usage: build-kconfig.sh ROUNDS}
cd /src/kconfig
i=0
while [ $i -lt "$rounds" ]; do
    rm -f conf
    tcc -D__STDC_NO_VLA__ -I../include -I. -o conf conf.c confdata.c expr.c lexer.lex.c menu.c parser.tab.c preprocess.c symbol.c util.c
    i=$((i + 1))
done
# The program it built runs.
./conf --help 2>&1 | grep -q "^Usage:"
