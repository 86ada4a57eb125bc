"""Never the wrong dataset: roots that hold several candidates are resolved by identity or refused, never by sort order."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from aerith.data import DataError, DatasetNotFoundError, load_dataset
from aerith.data.errors import AmbiguousRootError
from tests.fakes.aid.data import write_fake as fake_aid
from tests.fakes.captions_root.data import write_fake as fake_captions_root
from tests.fakes.dior_rsvg.data import write_fake as fake_dior
from tests.fakes.rsieval.data import write_fake as fake_rsieval
from tests.fakes.rsvqa_lr.data import write_fake as fake_rsvqa_lr
from tests.fakes.ucm.data import write_fake as fake_ucm


def _drop_dataset_field(path):
    data = json.loads(path.read_text())
    data.pop("dataset", None)
    path.write_text(json.dumps(data))


def test_ucm_and_sydney_side_by_side_each_loader_reads_its_own(tmp_path):
    root = fake_captions_root(tmp_path, folders=("UCM", "Sydney"))  # "Sydney" sorts before "UCM"
    ucm, sydney = load_dataset("ucm-captions", root, "train"), load_dataset("sydney-captions", root, "train")
    assert {s.image.parent.parent.name for s in ucm} == {"UCM"} and {s.image.parent.parent.name for s in sydney} == {"Sydney"}
    for folder in ("UCM", "Sydney"):  # the folder names alone identify them too
        _drop_dataset_field(root / folder / "dataset.json")
    assert load_dataset("ucm-captions", root, "test")[0].image.parent.parent.name == "UCM"
    assert load_dataset("sydney-captions", root, "test")[0].image.parent.parent.name == "Sydney"


def test_the_content_identifies_release_sized_files_whatever_the_folders_are_called(tmp_path):
    root = fake_captions_root(tmp_path, folders=("copy_a", "copy_b"), size="release", dataset_field=False)
    ucm = load_dataset("ucm-captions", root, "train")
    sydney = load_dataset("sydney-captions", root, "train")
    assert {s.image.parent.parent.name for s in ucm} == {"copy_a"} and {s.image.parent.parent.name for s in sydney} == {"copy_b"}
    assert len(ucm) == 1680 and len(sydney) == 491
    # a folder named after UCM holding Sydney's 613 images is Sydney's: content wins over names
    shutil.rmtree(root / "copy_a")
    (root / "copy_b").rename(root / "UCM_captions")
    with pytest.raises(DataError, match=r"holds no ucm-captions annotation file, only: UCM_captions/dataset.json \(sydney-captions: 613 images.*load it with 'sydney-captions'"):
        load_dataset("ucm-captions", root, "train")


def test_unidentifiable_copies_are_refused_listing_both(tmp_path):
    root = fake_captions_root(tmp_path, folders=("copy_a", "copy_b"), dataset_field=False)
    with pytest.raises(AmbiguousRootError) as info:
        load_dataset("ucm-captions", root, "train")
    message = str(info.value)
    assert "ambiguous root" in message and "copy_a/dataset.json (unidentified" in message and "copy_b/dataset.json (unidentified" in message
    assert "Pass the folder of the one you mean as the root" in message
    assert len(load_dataset("ucm-captions", root / "copy_a", "train")) == 3  # pointed at one copy, it is read
    # two copies of the same set are two candidates as well
    root2 = fake_captions_root(tmp_path / "two", folders=("UCM_captions", "backup/UCM_captions"))
    shutil.rmtree(root2 / "backup" / "UCM_captions")
    shutil.copytree(root2 / "UCM_captions", root2 / "backup" / "UCM_captions")
    with pytest.raises(AmbiguousRootError, match=r"2 candidates for the ucm-captions annotation file: UCM_captions/dataset.json .*backup/UCM_captions/dataset.json"):
        load_dataset("ucm-captions", root2, "train")


def test_a_lone_file_of_another_set_is_named(tmp_path):
    root = fake_captions_root(tmp_path, folders=("UCM_captions", "Sydney_captions"))
    shutil.rmtree(root / "UCM_captions")
    with pytest.raises(DataError, match=r"only: Sydney_captions/dataset.json \(sydney-captions: its 'dataset' field is 'sydney'\)"):
        load_dataset("ucm-captions", root, "train")


def test_two_copies_of_class_folders_are_refused(tmp_path):
    root = fake_aid(tmp_path / "dl").parent  # the download folder, holding AID/
    shutil.copytree(root / "AID", root / "aid")  # a second spelling of the dataset folder
    with pytest.raises(AmbiguousRootError, match=r"the aid class folders: AID \(30 of its 30 class folders\); aid \(30 of"):
        load_dataset("aid", root)
    assert len(load_dataset("aid", root / "AID", ratios=(1, 0, 0))) == 90


def test_two_copies_of_other_datasets_are_refused(tmp_path):
    dior = fake_dior(tmp_path / "dior")
    shutil.copytree(dior / "DIOR_RSVG", dior / "RSVGD")
    with pytest.raises(AmbiguousRootError, match="DIOR_RSVG.*RSVGD"):
        load_dataset("dior-rsvg", dior)
    shutil.rmtree(dior / "DIOR_RSVG")
    assert len(load_dataset("dior-rsvg", dior, "train")) == 4  # DIOR-RSVG's older folder name
    vqa = fake_rsvqa_lr(tmp_path / "vqa")
    shutil.copytree(vqa / "RSVQA_LR", vqa / "old" / "RSVQA_LR")
    with pytest.raises(AmbiguousRootError, match=r"question file of split 'train' .*: RSVQA_LR; old/RSVQA_LR"):
        load_dataset("rsvqa-lr", vqa, "train")
    rsieval = fake_rsieval(tmp_path / "rsgpt")
    shutil.copytree(rsieval / "dataset" / "RSIEval", rsieval / "RSIEval")
    with pytest.raises(AmbiguousRootError, match="rsieval annotation file"):
        load_dataset("rsieval", rsieval)


def test_a_download_folder_holding_only_the_zip_says_to_extract_it(tmp_path):
    source = fake_ucm(tmp_path / "src")
    download = tmp_path / "download"
    download.mkdir()
    archive = download / "UCMerced_LandUse.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(source.rglob("*.tif"))[:3]:
            z.write(path, path.relative_to(source))
    with pytest.raises(DatasetNotFoundError, match=r"holds the archive\(s\) UCMerced_LandUse.zip, not extracted: extract it first \(e.g. unzip 'UCMerced_LandUse.zip'"):
        load_dataset("ucm", download)
    with pytest.raises(DataError, match=r"UCMerced_LandUse.zip: is an archive, not the ucm folder; .* extract it first"):
        load_dataset("ucm", archive)
    (download / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes.txt: is a file; the root of the ucm dataset must be a folder"):
        load_dataset("ucm", download / "notes.txt")
    tarball = tmp_path / "tar" / "RSVQA_LR.tar.gz"
    tarball.parent.mkdir()
    tarball.write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match=r"RSVQA_LR.tar.gz, not extracted: .*tar -xf 'RSVQA_LR.tar.gz'"):
        load_dataset("rsvqa-lr", tarball.parent, "train")


def test_a_root_named_after_another_set_does_not_hide_a_lone_file(tmp_path):
    from aerith.data.datasets.karpathy import identify

    root = fake_captions_root(tmp_path / "rsicd_experiments", folders=("data", "unused"), dataset_field=False)
    shutil.rmtree(root / "unused")
    assert len(load_dataset("ucm-captions", root, "train")) == 3  # dataset.json is never RSICD's file name
    assert identify({"images": []}, ["rsicd_experiments"], "dataset.json").name is None
    assert identify({"images": []}, ["rsicd_experiments"], "dataset_rsicd.json").name == "rsicd"
    assert identify({"dataset": "UCM_captions", "images": []}, [], "dataset.json").name == "ucm-captions"


def test_differing_split_files_at_two_levels_are_refused(tmp_path):
    root = fake_ucm(tmp_path / "dl")
    images = root / "UCMerced_LandUse" / "Images"
    names = sorted(p.name for p in (images / "beach").iterdir())
    for split in ("train", "val", "test"):
        (images / f"uc_merced-{split}.txt").write_text(f"{names[0]}\n")
        (root / f"uc_merced-{split}.txt").write_text(f"{names[0]}\n")
    assert len(load_dataset("ucm", root)) == 1  # identical copies agree
    (root / "uc_merced-train.txt").write_text(f"{names[1]}\n")
    with pytest.raises(AmbiguousRootError, match=r"the ucm train split file \(they differ\): .*Images/uc_merced-train.txt; uc_merced-train.txt"):
        load_dataset("ucm", root)
