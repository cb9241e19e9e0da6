"""Bespoke arithmetic for hard-wired constants, as explicit gates in Amaranth.

* :mod:`.logic`: NAND/NOT gate builder with constant folding (full and half adders);
* :mod:`.word`: multi-bit integers made of such bits;
* :mod:`.csd`: canonical signed-digit recoding of constants;
* :mod:`.bitheap`: multi-operand sums as bit heaps, compressed by counter trees;
* :mod:`.compare`: comparators and the argmax;
* :mod:`.neuron`: a neuron's bit heap and activation;
* :mod:`.sharing`: multiples of an input shared by the neurons of a layer;
* :mod:`.decision`: the output layer as thresholds when the class depends on one value;
* :mod:`.classifier`: a whole model as gates (simplified, layer by layer, argmax).
"""
