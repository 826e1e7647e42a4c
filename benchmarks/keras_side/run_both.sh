#!/bin/sh
# Runs the Keras scripts here and the rnnkit examples, one after another, twice; prints each line with a label.
# usage: KERAS_PY=/path/to/keras-env/python RNNKIT_PY=/path/to/python sh benchmarks/keras_side/run_both.sh
set -e
cd "$(dirname "$0")/../.."
for round in 1 2; do
  for name in seq2seq_chars bilstm_classifier; do
    echo "round $round keras $name: $("$KERAS_PY" benchmarks/keras_side/${name}_keras.py 2>/dev/null | tail -1)"
    echo "round $round rnnkit $name: $("$RNNKIT_PY" examples/$name.py 2>/dev/null | grep -E 'accuracy' | tail -1)"
  done
done
