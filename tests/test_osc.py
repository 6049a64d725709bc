"""OSC 1.0 encoder/decoder: exact bytes of known packets, round trips, bundles, bad input."""

from __future__ import annotations

import struct

import pytest

from mocap import osc
from mocap.errors import FileFormatError, UsageError


def test_message_bytes_match_the_osc_spec_example():
    # the OSC 1.0 spec's example: "/oscillator/4/frequency" ,f 440.0
    b = osc.encode(osc.Message("/oscillator/4/frequency", [440.0]))
    assert b == (b"/oscillator/4/frequency\x00" + b",f\x00\x00" + bytes.fromhex("43dc0000"))
    assert len(b) % 4 == 0
    # "/foo" ,iisff 1000 -1 "hello" 1.234 5.678
    b = osc.encode(osc.Message("/foo", [1000, -1, "hello", 1.234, 5.678]))
    assert b[:8] == b"/foo\x00\x00\x00\x00"
    assert b[8:16] == b",iisff\x00\x00"
    assert b[16:24] == bytes.fromhex("000003e8ffffffff")
    assert b[24:32] == b"hello\x00\x00\x00"
    assert b[32:] == struct.pack(">ff", 1.234, 5.678)


def test_round_trip_of_every_type():
    args = [7, -(2**31), 2**40, 0.5, ("d", 0.1), "bone", "", b"\x01\x02\x03", True, False, None,
            ("t", osc.timetag_from_unix(1.5e9))]
    m = osc.decode(osc.encode(osc.Message("/VMC/Ext/Bone/Pos", args)))
    assert m.address == "/VMC/Ext/Bone/Pos"
    assert m.args[:4] == [7, -(2**31), 2**40, 0.5]
    assert m.args[4] == 0.1  # float64 exact
    assert m.args[5:11] == ["bone", "", b"\x01\x02\x03", True, False, None]
    assert osc.unix_from_timetag(m.args[11]) == pytest.approx(1.5e9, abs=1e-6)
    # float32: what comes back is the nearest float32
    x = osc.decode(osc.encode(osc.Message("/a", [0.1]))).args[0]
    assert x == pytest.approx(0.1, abs=1e-8) and x == struct.unpack(">f", struct.pack(">f", 0.1))[0]


def test_strings_padding_lengths():
    for n in range(0, 9):
        b = osc.encode(osc.Message("/s", ["x" * n]))
        assert len(b) % 4 == 0
        assert osc.decode(b).args == ["x" * n]


def test_nested_bundles_and_timetags():
    tag = osc.timetag_from_unix(1_700_000_000.25)
    assert osc.unix_from_timetag(tag) == pytest.approx(1_700_000_000.25, abs=1e-9)
    inner = osc.Bundle([osc.Message("/VMC/Ext/Blend/Val", ["jawOpen", 0.75]),
                        osc.Message("/VMC/Ext/Blend/Apply")], timetag=osc.IMMEDIATELY)
    outer = osc.Bundle([osc.Message("/VMC/Ext/T", [12.5]), inner, osc.Message("/VMC/Ext/OK", [1])], timetag=tag)
    b = osc.encode(outer)
    assert b.startswith(b"#bundle\x00")
    assert struct.unpack(">Q", b[8:16])[0] == tag
    d = osc.decode(b)
    assert isinstance(d, osc.Bundle) and d.timetag == tag
    assert isinstance(d.elements[1], osc.Bundle) and d.elements[1].timetag == 1
    flat = [(m.address, m.args) for m in osc.iter_messages(d)]
    assert flat == [("/VMC/Ext/T", [12.5]), ("/VMC/Ext/Blend/Val", ["jawOpen", 0.75]),
                    ("/VMC/Ext/Blend/Apply", []), ("/VMC/Ext/OK", [1])]


def test_bad_packets_are_rejected_with_a_reason():
    good = osc.encode(osc.Message("/a/b", [1, 2.0, "c"]))
    with pytest.raises(FileFormatError, match="multiple of 4"):
        osc.decode(good[:-1])
    with pytest.raises(FileFormatError, match="runs past the end"):
        osc.decode(good[:-8] + b"")  # the string arg cut off -> the float is missing
    with pytest.raises(FileFormatError, match="neither a message"):
        osc.decode(b"abcd")
    with pytest.raises(FileFormatError, match="unsupported type tag"):
        osc.decode(b"/a\x00\x00,x\x00\x00")
    bad_bundle = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", 6) + b"/a\x00\x00,\x00\x00\x00"
    with pytest.raises(FileFormatError, match="multiple of 4"):
        osc.decode(bad_bundle)
    with pytest.raises(UsageError):
        osc.encode(osc.Message("no-slash", []))
    with pytest.raises(UsageError):
        osc.encode(osc.Message("/a", [object()]))


def test_python_osc_agrees_both_ways():
    """python-osc (an independent implementation) decodes our bundles, and we decode its."""
    from pythonosc.osc_bundle import OscBundle
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    tag = osc.timetag_from_unix(1_700_000_000.5)
    ours = osc.encode(osc.Bundle([osc.Message("/VMC/Ext/Bone/Pos", ["LeftUpperArm", 0.1, 0.2, 0.3, 0.0, 0.0,
                                                                      0.7071067, 0.7071067]),
                                  osc.Message("/VMC/Ext/OK", [1, 3, 0, 1]),
                                  osc.Message("/VMC/Ext/Blend/Apply")], timetag=tag))
    b = OscBundle(ours)
    assert b.timestamp == pytest.approx(1_700_000_000.5, abs=1e-6)
    msgs = list(b)
    assert [m.address for m in msgs] == ["/VMC/Ext/Bone/Pos", "/VMC/Ext/OK", "/VMC/Ext/Blend/Apply"]
    assert msgs[0].params[0] == "LeftUpperArm" and msgs[0].params[1:] == pytest.approx(
        [0.1, 0.2, 0.3, 0.0, 0.0, 0.7071067, 0.7071067], abs=1e-7)
    assert msgs[1].params == [1, 3, 0, 1] and msgs[2].params == []

    mb = OscMessageBuilder("/VMC/Ext/Blend/Val")
    mb.add_arg("jawOpen")
    mb.add_arg(0.25)
    bb = OscBundleBuilder(1_700_000_000.25)  # python-osc takes Unix seconds
    bb.add_content(mb.build())
    theirs = bb.build().dgram
    d = osc.decode(theirs)
    assert isinstance(d, osc.Bundle)
    assert osc.unix_from_timetag(d.timetag) == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert [(m.address, m.args) for m in osc.iter_messages(d)] == [("/VMC/Ext/Blend/Val", ["jawOpen", 0.25])]
    single = OscMessage(osc.encode(osc.Message("/VMC/Ext/T", [12.5])))
    assert single.address == "/VMC/Ext/T" and single.params == [12.5]
