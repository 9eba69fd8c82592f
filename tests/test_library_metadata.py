"""Labels and UCS categories from catalogues, embedded tags, sidecars and file names."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from sfxmatch.errors import ConfigError
from sfxmatch.library.catalogue import load_catalogue, load_ontology
from sfxmatch.library.metadata import describe_sound
from sfxmatch.library.scan import scan
from sfxmatch.library.tags import read_embedded, read_sidecar_text
from sfxmatch.library.text import label_from_name, name_words
from sfxmatch.library.ucs import (
    all_categories,
    lookup_cat_id,
    lookup_names,
    parse_ucs_name,
    ucs_version,
)
from sfxmatch.testing.synth import make_audio_file, tone

RATE = 16000


def _sound(path: Path, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_audio_file(path, tone(440, 0.3, RATE, channels=channels), RATE)
    return path


def _chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _add_riff_chunks(path: Path, *chunks: bytes) -> None:
    """Insert chunks after the RIFF header (before fmt/data), fixing the RIFF size."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    body = b"".join(chunks) + data[12:]
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)


def _bext(description: str) -> bytes:
    fields = struct.pack(
        "<256s32s32s10s8sQH64s10s180s",
        description.encode("utf-8"),
        b"sfxmatch tests",
        b"REF0001",
        b"2024-05-01",
        b"12:00:00",
        0,
        2,
        b"",
        b"",
        b"",
    )
    return _chunk(b"bext", fields + b"A=PCM,F=16000,W=16,M=mono\r\n")


def _info(**fields: str) -> bytes:
    body = b"INFO" + b"".join(
        _chunk(key.encode("ascii"), value.encode("utf-8") + b"\0") for key, value in fields.items()
    )
    return _chunk(b"LIST", body)


def _ixml(inner: str) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?><BWFXML><IXML_VERSION>2.10</IXML_VERSION>'
    xml = f"{head}{inner}</BWFXML>"
    return _chunk(b"iXML", xml.encode("utf-8"))


def _smpl_with_loop() -> bytes:
    header = struct.pack("<9I", 0, 0, 62500, 60, 0, 0, 0, 1, 0)  # one loop
    loop = struct.pack("<6I", 0, 0, 0, 4799, 0, 0)
    return _chunk(b"smpl", header + loop)


# --------------------------------------------------------------------------- UCS


def test_ucs_list_is_complete_and_looked_up_strictly_for_names() -> None:
    rows = all_categories()
    assert ucs_version() == "8.2"
    assert len(rows) == 753 and len({r.category for r in rows}) == 82
    door = lookup_cat_id("DOORWood")
    assert door is not None
    assert (door.category, door.subcategory, door.cat_short) == ("DOORS", "WOOD", "DOOR")
    assert lookup_cat_id("DOORWOOD") == door  # metadata fields: any case
    assert lookup_cat_id("DOORWOOD", exact_case=True) is None
    assert lookup_cat_id("WOODHandl") == lookup_cat_id("WOODHndl")  # older spelling
    assert lookup_names("Doors", "Wood") == door
    assert lookup_names("ambience") == lookup_cat_id("AMBMisc")
    assert lookup_names("Not a category") is None


def test_ucs_file_names() -> None:
    parsed = parse_ucs_name("DOORWood_Creaky Door Open_JD_Cabin")
    assert parsed is not None
    assert parsed.category.cat_id == "DOORWood"
    assert (parsed.fx_name, parsed.creator_id, parsed.source_id) == (
        "Creaky Door Open",
        "JD",
        "Cabin",
    )
    full = parse_ucs_name("GUNAntq-Duel_Pistol Muzzleloader-Shot 01 Composite_AKB_Firearms_v2")
    assert full is not None
    assert (full.user_category, full.vendor_category) == ("Duel", "Pistol Muzzleloader")
    assert (full.fx_name, full.user_data) == ("Shot 01 Composite", "v2")
    assert parse_ucs_name("TEST_tone") is not None  # TEST is a CatID (ARCHIVED)
    assert parse_ucs_name("test_tone") is None  # ... but only with its case
    assert parse_ucs_name("default_dirt_footstep") is None

    label = label_from_name("DOORWood_Creaky Door Open_JD_Cabin.wav")
    assert label.text == "creaky door open"
    assert label.ucs is not None and label.ucs.category.cat_short == "DOOR"
    gun = label_from_name("GUNAntq_Pistol Muzzleloader-Shot 01 Composite_AKB_Firearms.wav")
    assert gun.text == "pistol muzzleloader shot composite"
    assert label_from_name("RAIN.wav").text == "rain"  # no FX name: the category's words


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("name", "label", "loop"),
    [
        ("default_dirt_footstep.1.ogg", "dirt footstep", False),
        ("doors_door_open.ogg", "door open", False),
        ("doors_glass_door_close.ogg", "glass door close", False),
        ("fire_fire.2.ogg", "fire", False),
        ("creakyDoorOpen_take3_v2.wav", "creaky door open", False),
        ("Forest_Amb_Loop_01.wav", "forest ambience", True),
        ("door_open_b.wav", "door open", False),
        ("Car-Pass-By 48k 24bit.WAV", "car pass by", False),
        ("env_sounds_water.3.ogg", "water", False),
        ("Café ambience (morning).flac", "café ambience morning", False),
        ("0042.wav", "0042", False),
        ("sfx.wav", "sfx", False),
    ],
)
def test_file_names_become_words(name: str, label: str, loop: bool) -> None:
    result = label_from_name(name)
    assert (result.text, result.loop) == (label, loop)


def test_name_words_split_camel_case_and_acronyms() -> None:
    assert name_words("HTTPServerHum")[0] == "http server hum"
    assert name_words("glassBreak02a")[0] == "glass break"


# --------------------------------------------------------------------------- embedded tags


def test_bwf_bext_description_and_ixml_aswg(tmp_path: Path) -> None:
    wav = _sound(tmp_path / "T001.wav")
    _add_riff_chunks(
        wav,
        _bext("sSPEED=025.000-ND\r\nForest at night, crickets and a distant owl\r\nsTAKE=01"),
        _ixml(
            "<ASWG><category>AMBIENCE</category><subCategory>FOREST</subCategory>"
            "<catId>AMBForst</catId><fxName>Night Crickets</fxName></ASWG>"
        ),
        _info(INAM="T001", ICMT="Recorded by a tester"),
        _smpl_with_loop(),
    )
    assert scan([tmp_path]).added[0].format == "wav"  # the file is still a valid WAVE
    tags = read_embedded(wav, "wav")
    assert tags.problem is None and tags.loop
    label = describe_sound(wav, fmt="wav")
    assert label.text == "forest at night, crickets and a distant owl"
    assert (label.source, label.detail) == ("embedded", "bext description")
    assert label.ucs is not None and label.ucs.cat_id == "AMBForst"
    assert label.ucs_source == "embedded" and label.loop_hint


def test_ixml_fx_name_when_no_description(tmp_path: Path) -> None:
    wav = _sound(tmp_path / "take.wav")
    _add_riff_chunks(
        wav,
        _ixml(
            "<ASWG><fxName>Night Crickets</fxName><category>Ambience</category>"
            "<subCategory>Forest</subCategory></ASWG>"
        ),
    )
    label = describe_sound(wav)
    assert (label.text, label.detail) == ("night crickets", "iXML ASWG/fxName")
    assert label.ucs is not None and label.ucs.cat_id == "AMBForst"  # from the written names
    assert not label.loop_hint


def test_soundminer_user_block_and_riff_info(tmp_path: Path) -> None:
    wav = _sound(tmp_path / "x.wav")
    _add_riff_chunks(
        wav,
        _ixml(
            "<USER><DESCRIPTION>Wooden door creaks open slowly</DESCRIPTION>"
            "<CATID>DOORWOOD</CATID></USER>"
        ),
    )
    label = describe_sound(wav)
    assert (label.text, label.detail) == ("wooden door creaks open slowly", "iXML USER/DESCRIPTION")
    assert label.ucs is not None and label.ucs.cat_id == "DOORWood"

    info_only = _sound(tmp_path / "y.wav")
    _add_riff_chunks(info_only, _info(INAM="Kettle", ICMT="Electric kettle on the boil. CC-BY-SA"))
    label = describe_sound(info_only)
    assert (label.text, label.detail) == ("electric kettle on the boil", "RIFF INFO ICMT")


def test_damaged_ixml_and_truncated_chunks_do_not_raise(tmp_path: Path) -> None:
    wav = _sound(tmp_path / "door_slam.wav")
    _add_riff_chunks(wav, _chunk(b"iXML", b"<BWFXML><USER><DESCR"), _chunk(b"LIST", b"INFO\x01"))
    assert describe_sound(wav).text == "door slam"
    junk = tmp_path / "broken.wav"
    junk.write_bytes(b"RIFF\xff\xff\xff\x7fWAVEbext\xff\xff\xff\x7f" + bytes(50))
    assert read_embedded(junk, "wav").descriptions == ()


def test_id3_comment_and_ucs_on_mp3(tmp_path: Path) -> None:
    from mutagen.id3 import COMM, ID3, TIT2, TXXX

    mp3 = _sound(tmp_path / "DOG_01.mp3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="1889"))  # real files carry titles like this
    tags.add(COMM(encoding=3, lang="eng", desc="iTunNORM", text=" 000001B3 000000F5"))
    tags.add(COMM(encoding=3, lang="eng", desc="", text="A medium dog barks twice outside"))
    tags.add(TXXX(encoding=3, desc="CATID", text="ANMLDog"))
    tags.save(mp3)
    label = describe_sound(mp3, fmt="mp3")
    assert (label.text, label.source, label.detail) == (
        "a medium dog barks twice outside",
        "embedded",
        "ID3 COMM",
    )
    assert label.ucs is not None and label.ucs.cat_id == "ANMLDog"

    bare = _sound(tmp_path / "rooster.mp3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="coq07"))
    tags.save(bare)
    assert (describe_sound(bare).text, describe_sound(bare).source) == ("rooster", "filename")


@pytest.mark.parametrize("ext", ["ogg", "flac"])
def test_vorbis_comments(tmp_path: Path, ext: str) -> None:
    import mutagen

    path = _sound(tmp_path / f"130723_05.{ext}", channels=2)
    tagged = mutagen.File(path)
    assert tagged is not None
    tagged["TITLE"] = "130723_05"  # recorder junk, ignored
    tagged["DESCRIPTION"] = "Heavy rain on a tin roof"
    tagged["CATEGORY"] = "RAIN"
    tagged["SUBCATEGORY"] = "METAL"
    tagged.save()
    label = describe_sound(path)
    assert (label.text, label.detail) == ("heavy rain on a tin roof", "Vorbis comment description")
    assert label.ucs is not None and label.ucs.cat_id == "RAINMetl"


def test_mp4_comment_and_descriptive_title(tmp_path: Path) -> None:
    from mutagen.mp4 import MP4

    path = _sound(tmp_path / "clip7.m4a")
    tagged = MP4(path)
    tagged["\xa9nam"] = ["Water vaporizing on hot stones"]
    tagged.save()
    label = describe_sound(path)
    assert (label.text, label.detail) == ("water vaporizing on hot stones", "MP4 ©nam")
    tagged["\xa9cmt"] = ["Steam hiss from a sauna stove"]
    tagged.save()
    assert describe_sound(path).text == "steam hiss from a sauna stove"


# --------------------------------------------------------------------------- sidecars


def test_sidecar_text_first_line(tmp_path: Path) -> None:
    ogg = _sound(tmp_path / "vacuum_cleaner.ogg", channels=2)
    (tmp_path / "vacuum_cleaner.txt").write_text(
        "A vacuum cleaner.\nfr.utf8=Un aspirateur.\n", "utf-8"
    )
    assert read_sidecar_text(ogg) == ("a vacuum cleaner", "vacuum_cleaner.txt")
    label = describe_sound(ogg)
    assert (label.text, label.source, label.detail) == (
        "a vacuum cleaner",
        "sidecar",
        "vacuum_cleaner.txt",
    )
    assert describe_sound(ogg, read_tags=False).source == "sidecar"


# --------------------------------------------------------------------------- catalogues


def test_csv_catalogue_with_loose_headers_beats_everything(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    wav = _sound(lib / "Doors" / "d1.wav")
    _add_riff_chunks(wav, _bext("Some embedded description"))
    _sound(lib / "Other" / "d1.wav")
    cat = tmp_path / "catalogue.csv"
    cat.write_bytes(
        "\ufeffFile Name;UCS CatID;Long Description\n"
        "Doors\\d1.wav;DOORWood;Heavy oak door, slammed\n"
        "Other/d1.wav;;Something else entirely\n"
        "missing.wav;;Never looked up\n".encode()
    )
    catalogue = load_catalogue(cat)
    assert len(catalogue) == 3
    label = describe_sound(wav, relpath="Doors/d1.wav", catalogue=catalogue)
    assert (label.text, label.source, label.detail) == (
        "heavy oak door, slammed",
        "catalogue",
        "catalogue.csv line 2",
    )
    assert label.ucs is not None and label.ucs.cat_id == "DOORWood"
    other = describe_sound(lib / "Other" / "d1.wav", relpath="Other/d1.wav", catalogue=catalogue)
    assert other.text == "something else entirely"
    # d1.wav alone is ambiguous (two rows), a path from another machine still matches.
    assert catalogue.lookup("d1.wav") is None
    assert catalogue.lookup("Z:/Archive/Doors/d1.wav").text == "heavy oak door, slammed"  # type: ignore[union-attr]


def test_tsv_and_headerless_catalogues(tmp_path: Path) -> None:
    tsv = tmp_path / "captions.tsv"
    tsv.write_text("filepath\tcaption\nbirds/robin.wav\tA robin sings at dawn.\n", "utf-8")
    entry = load_catalogue(tsv).lookup("birds/robin.wav")
    assert entry is not None and entry.text == "a robin sings at dawn"
    bare = tmp_path / "list.csv"
    bare.write_text("thunder.wav,Distant thunder rumble\nrain.wav,Light rain\n", "utf-8")
    catalogue = load_catalogue(bare)
    assert catalogue.lookup("x/thunder.wav").text == "distant thunder rumble"  # type: ignore[union-attr]
    assert catalogue.lookup("rain.wav").origin == "list.csv line 2"  # type: ignore[union-attr]
    assert catalogue.lookup("thunder_2.wav") is None  # no loose stems outside AudioSet
    merged = catalogue.merged(load_catalogue(tsv))
    assert len(merged) == 3 and merged.lookup("birds/robin.wav") is not None
    esc = tmp_path / "esc50.csv"
    esc.write_text("filename,fold,target,category,esc10\n1-100032-A-0.wav,1,0,dog,True\n")
    assert load_catalogue(esc).lookup("1-100032-A-0.wav").text == "dog"  # type: ignore[union-attr]
    broken = tmp_path / "broken.csv"
    broken.write_text("just one column\nper line\n")
    with pytest.raises(ConfigError):
        load_catalogue(broken)
    with pytest.raises(ConfigError):
        load_catalogue(tmp_path / "nope.csv")


def test_audioset_segments_with_ontology_beside(tmp_path: Path) -> None:
    (tmp_path / "mid_to_display_name.tsv").write_text(
        "/m/09x0r\tSpeech\n/m/0bt9lr\tDog\n/m/05tny_\tBark\n", "utf-8"
    )
    segments = tmp_path / "balanced_train_segments.csv"
    segments.write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=2, num_segs=2, num_unique_labels=3, num_positive_labels=3\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--PJHxphWEs, 30.000, 40.000, "/m/0bt9lr,/m/05tny_"\n'
        '-0_Ab_Cd-Ef, 0.000, 10.000, "/m/09x0r"\n',
        "utf-8",
    )
    catalogue = load_catalogue(segments)
    for name in ("--PJHxphWEs.wav", "Y--PJHxphWEs.wav", "--PJHxphWEs_30.000_40.000.flac"):
        entry = catalogue.lookup(name)
        assert entry is not None and entry.text == "dog, bark", name
    underscored = catalogue.lookup("-0_Ab_Cd-Ef_0.wav")  # a YTID with underscores in it
    assert underscored is not None and underscored.text == "speech"


def test_audioset_strong_labels_merge_per_segment(tmp_path: Path) -> None:
    ontology = tmp_path / "ontology.json"
    ontology.write_text(
        json.dumps([{"id": "/m/0bt9lr", "name": "Dog"}, {"id": "/m/07yv9", "name": "Vehicle"}])
    )
    strong = tmp_path / "audioset_eval_strong.tsv"
    strong.write_text(
        "segment_id\tstart_time_seconds\tend_time_seconds\tlabel\n"
        "abc_def12345_30000\t0.0\t1.5\t/m/0bt9lr\n"
        "abc_def12345_30000\t2.0\t9.0\t/m/07yv9\n"
        "abc_def12345_30000\t4.0\t5.0\t/m/0bt9lr\n",
        "utf-8",
    )
    entry = load_catalogue(strong, ontology=load_ontology(ontology)).lookup(
        "abc_def12345_30000.wav"
    )
    assert entry is not None and entry.text == "dog, vehicle"
    indices = tmp_path / "class_labels_indices.csv"
    indices.write_text('index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0bt9lr,"Dog"\n')
    assert load_ontology(indices) == {"/m/09x0r": "Speech", "/m/0bt9lr": "Dog"}


# --------------------------------------------------------------------------- real sounds


@pytest.mark.real_media
def test_real_sounds_get_sensible_labels(
    minetest_sounds: Path, tuxpaint_sounds: Path, ovos_sounds: Path
) -> None:
    result = scan([minetest_sounds, tuxpaint_sounds, ovos_sounds])
    labels = {
        e.relpath: describe_sound(e.path, relpath=e.relpath, fmt=e.format)
        for e in result.snapshot.entries
    }
    texts = [label.text for label in labels.values()]
    assert all(texts) and not any("cc-by" in t or "http" in t or "edited by" in t for t in texts)
    assert labels["default/sounds/default_dirt_footstep.1.ogg"].text == "dirt footstep"
    assert labels["doors/sounds/doors_door_open.ogg"].text == "door open"
    assert labels["cow.mp3"].text == "cow"  # its ID3 title "1889" is ignored
    assert labels["duck.mp3"].text == "duck"  # ... and "canards"
    assert labels["animals/mammals/bovines/cow.ogg"].text == "a cow"
    assert labels["animals/mammals/bovines/cow.ogg"].source == "sidecar"
    assert "vacuum" in labels["household/vacuum_cleaner.ogg"].text
    assert labels["household/kettle.ogg"].text == "electric kettle on the boil"
    sources = {label.source for label in labels.values()}
    assert {"sidecar", "filename", "embedded"} <= sources
    by_source = [
        [item for item in sorted(labels.items()) if item[1].source == source][::7][:5]
        for source in ("embedded", "sidecar", "filename")
    ]
    sample = [item for group in by_source for item in group]
    print(
        "\n".join(f"{rel:50s} -> {lab.text!r} [{lab.source}: {lab.detail}]" for rel, lab in sample)
    )


def test_the_label_is_decided_from_values_alone_most_trusted_first() -> None:
    from sfxmatch.library.labels import (
        CatalogueEntry,
        EmbeddedTags,
        LabelEvidence,
        choose_label,
    )
    from sfxmatch.library.syncpoints import Mark

    tags = EmbeddedTags(
        descriptions=(("Heavy wooden door slams shut", "bext description"),),
        mark=Mark(0.25, "cue"),
        problem="ID3 tag cut short",
    )
    name = "DOORWood_Slam_Heavy_01.wav"
    from_tags = choose_label(LabelEvidence(name=name, tags=tags))
    assert (from_tags.text, from_tags.source) == ("heavy wooden door slams shut", "embedded")
    assert from_tags.ucs is not None and from_tags.ucs_source == "ucs_name"
    assert from_tags.sync == Mark(0.25, "cue") and from_tags.sync_source == "file"
    assert from_tags.problems == ("ID3 tag cut short",)

    entry = CatalogueEntry("barn door, slam", None, "sounds.csv line 3", sync=0.1)
    from_catalogue = choose_label(LabelEvidence(name=name, catalogue=entry, tags=tags))
    assert (from_catalogue.text, from_catalogue.source) == ("barn door, slam", "catalogue")
    assert from_catalogue.sync_source == "catalogue"

    bare = choose_label(LabelEvidence(name="rain_on_tin_roof.flac"))
    assert (bare.text, bare.source) == ("rain on tin roof", "filename")
