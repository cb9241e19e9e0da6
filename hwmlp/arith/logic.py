"""Explicit gate-level logic in Amaranth: NAND2 and inverters with constant folding.

:class:`Logic` writes every gate as its own named 1-bit signal of an Amaranth
module, so shared gates are emitted once and the netlist handed to synthesis has
exactly the structure built here. Gates are NAND2 and NOT only, because NAND2 is
the cheapest cell of the EGFET library in area and in leakage; every other function
(XOR, full adder, multiplexer, ...) is written as its classic NAND network, e.g. the
nine-NAND full adder.

A :data:`Bit` is the constant ``0`` or ``1`` (a Python int) or a 1-bit Amaranth
value. Gates fold constants (``NAND(x, 1) = NOT x``, ``NAND(x, 0) = 1``), double
inversions and complementary inputs (``NAND(x, NOT x) = 1``), and identical gates
are built once (structural hashing), so logic fed with constants shrinks at
generation time. Bits are identified by object identity: create each input bit once.

:meth:`Logic.evaluate` simulates the gates built so far, many input vectors at once,
which lets tests check a generated network against its golden model without
synthesis or an HDL simulator.
"""

from __future__ import annotations

from typing import Iterable, Sequence, Union

from amaranth.hdl import Module, Signal, Value

#: A logic level: the constant 0 or 1, or a 1-bit Amaranth value.
Bit = Union[int, Value]


class Logic:
    """Gate builder on ``module``'s combinational domain; signal names start with ``prefix``.

    Bits must be 0, 1, or 1-bit Amaranth values; gate outputs are new 1-bit signals.
    With ``module`` None the gates are only recorded (for :meth:`evaluate` and
    :meth:`count`), not added to any module.
    """

    def __init__(self, module: Module | None = None, prefix: str = "g"):
        self.module = module
        self.prefix = prefix
        self._gates: list[tuple[Signal, Value, Value | None]] = []  # (output, a, b); b None: NOT
        self._inverse: dict[int, Bit] = {}
        self._nands: dict[tuple[int, int], Signal] = {}  # keyed by input ids: _gates keeps them alive

    def _new(self, expr: Value, a: Value, b: Value | None) -> Signal:
        sig = Signal(name=f"{self.prefix}{len(self._gates)}")
        if self.module is not None:
            self.module.d.comb += sig.eq(expr)
        self._gates.append((sig, a, b))
        return sig

    def count(self) -> dict[str, int]:
        """Gates built so far: ``{"nand": ..., "not": ...}``."""
        n_not = sum(1 for _, _, b in self._gates if b is None)
        return {"nand": len(self._gates) - n_not, "not": n_not}

    # ----- primitives -------------------------------------------------------------
    def not_(self, a: Bit) -> Bit:
        """``NOT a``."""
        if isinstance(a, int):
            return 1 - a
        if id(a) not in self._inverse:
            y = self._new(~a, a, None)
            self._inverse[id(a)] = y
            self._inverse[id(y)] = a
        return self._inverse[id(a)]

    def nand(self, a: Bit, b: Bit) -> Bit:
        """``NOT (a AND b)``."""
        if isinstance(a, int):
            a, b = b, a
        if isinstance(b, int):
            return 1 if b == 0 else self.not_(a)
        if a is b:
            return self.not_(a)
        if self._inverse.get(id(a)) is b:
            return 1
        key = (min(id(a), id(b)), max(id(a), id(b)))
        if key not in self._nands:
            self._nands[key] = self._new(~(a & b), a, b)
        return self._nands[key]

    # ----- derived gates ----------------------------------------------------------
    def and_(self, a: Bit, b: Bit) -> Bit:
        return self.not_(self.nand(a, b))

    def or_(self, a: Bit, b: Bit) -> Bit:
        return self.nand(self.not_(a), self.not_(b))

    def xor(self, a: Bit, b: Bit) -> Bit:
        """``a XOR b`` as four NANDs."""
        return self._xor(a, b, self.nand(a, b))

    def _xor(self, a: Bit, b: Bit, nand_ab: Bit) -> Bit:
        return self.nand(self.nand(a, nand_ab), self.nand(b, nand_ab))

    def mux(self, sel: Bit, if1: Bit, if0: Bit) -> Bit:
        """``if1`` when ``sel`` else ``if0``, as three NANDs (and ``NOT sel``)."""
        if if1 is if0 or (isinstance(if1, int) and isinstance(if0, int) and if1 == if0):
            return if1
        return self.nand(self.nand(sel, if1), self.nand(self.not_(sel), if0))

    def full_adder(self, a: Bit, b: Bit, c: Bit) -> tuple[Bit, Bit]:
        """``(sum, carry)`` of ``a + b + c``: the nine-NAND full adder (with ``c = 0``,
        a half adder: four NANDs and an inverter)."""
        n_ab = self.nand(a, b)
        t = self._xor(a, b, n_ab)
        n_tc = self.nand(t, c)
        return self._xor(t, c, n_tc), self.nand(n_ab, n_tc)

    def carry(self, a: Bit, b: Bit, c: Bit) -> Bit:
        """The carry (majority) of ``a + b + c`` alone: ``ab + c(a + b)``."""
        return self.nand(self.nand(a, b), self.nand(c, self.or_(a, b)))

    def parity(self, bits: Iterable[Bit]) -> Bit:
        """XOR of ``bits`` (0 for none)."""
        out: Bit = 0
        for b in bits:
            out = self.xor(out, b)
        return out

    # ----- simulation -------------------------------------------------------------
    def evaluate(self, inputs: Sequence[tuple[Value, int]], bits: Sequence[Bit], n_vectors: int) -> list[int]:
        """Values of ``bits`` for ``n_vectors`` input vectors at once.

        ``inputs``: ``(input bit, value)`` pairs, the value packing the bit's level in
        every vector (vector ``v`` in bit ``v``); every input the gates read must be
        given. Returns one such packed value per entry of ``bits``.
        """
        ones = (1 << n_vectors) - 1
        env = {id(v): x & ones for v, x in inputs}

        def level(v: Bit) -> int:
            if isinstance(v, int):
                return ones if v else 0
            try:
                return env[id(v)]
            except KeyError:
                raise ValueError(f"no value given for input {v!r}") from None

        for out, a, b in self._gates:
            env[id(out)] = ones ^ (level(a) if b is None else level(a) & level(b))
        return [level(v) for v in bits]
