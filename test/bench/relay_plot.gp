# relay_plot.gp - plots of the relay benchmark (run by relay_bench.sh in
# test/bench/results, on the .dat files relay_report.py writes there).
set terminal pngcairo size 900,560 noenhanced font ",10"
set grid
set key center right

# have_workers, have_size, have_parts (set with -e by relay_bench.sh): which
# data files have points
if (!exists("have_workers")) have_workers = 1
if (!exists("have_size")) have_size = 1
if (!exists("have_parts")) have_parts = 1

# throughput against workers: A (body) and B (headers), with C (COPY) as the bound
if (have_workers) {
set output "relay_workers.png"
set title "sentry_relay: drain throughput against workers (scenarios A, B; C = COPY of the same rows)"
set xlabel "relay workers"
set ylabel "messages/s (C: rows/s)"
set xtics 1
set yrange [0:*]
set xrange [0.5:*]
plot "relay_workers.dat" using 1:2 with linespoints lw 2 pt 7 title "A: body decoding", \
     "" using 1:3 with linespoints lw 2 pt 5 title "B: header decoding", \
     "" using 1:4 with lines dt 2 lw 2 title "C: COPY of the job rows"
}

# throughput against message size (F), messages/s and MB/s
if (have_size) {
set output "relay_msgsize.png"
set title "sentry_relay: throughput against message size (scenario F, 64 partitions)"
set xlabel "message size, nominal (KB, log scale)"
set logscale x 2
set xrange [*:*]
set xtics auto
set ylabel "messages/s"
set y2label "MB/s"
set y2tics
set ytics nomirror
set y2range [0:*]
set key top center
plot "relay_msgsize.dat" using 1:3 with linespoints lw 2 pt 7 axes x1y1 title "messages/s", \
     "" using 1:4 with linespoints lw 2 pt 5 axes x1y2 title "MB/s"
unset logscale x
unset y2tics
unset y2label
set ytics mirror
}

# throughput against partitions (F)
if (have_parts) {
set output "relay_partitions.png"
set title "sentry_relay: throughput against partitions (scenario F, ~0.8 KB messages)"
set xlabel "partitions (log scale)"
set logscale x 2
set ylabel "messages/s"
set key top right
plot "relay_partitions.dat" using 1:2 with linespoints lw 2 pt 7 title "messages/s"
}
