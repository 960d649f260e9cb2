"""gan/cli.py: error messages and exit codes, flag parsing, image folders in, PNGs out."""


from absl import flags
import numpy as np
from PIL import Image
import pytest

from configs import default
from gan import cli
from gan import data


def raise_(error: BaseException):
  raise error


def chained(outer: str, inner: BaseException, explicit: bool = True) -> Exception:
  """ValueError(outer) raised while handling `inner`: `raise ... from inner` or implicitly."""
  try:
    try:
      raise inner
    except type(inner) as e:
      if explicit:
        raise ValueError(outer) from e
      raise ValueError(outer)  # pylint: disable=raise-missing-from
  except ValueError as e:
    return e


def test_one_line_is_the_message_or_the_explicit_root_cause():
  error = chained("Cannot read the checkpoint:\n  see details.", OSError("disk\n   gone."))
  assert cli.one_line(error) == "Cannot read the checkpoint: see details."
  assert cli.one_line(error, root_cause=True) == "OSError: disk gone"
  # An implicit context (an exception raised inside an except block) is not a cause.
  assert cli.one_line(chained("Bad JSON.", StopIteration(), explicit=False), root_cause=True) == "ValueError: Bad JSON"
  assert cli.one_line(ValueError("x" * 400), root_cause=True) == "ValueError: " + "x" * 300 + "..."


def test_one_paragraph_keeps_only_the_last_line_of_an_embedded_traceback():
  text = ("flag --config=c.py: Error whilst parsing config file:\nTraceback (most recent call last):\n"
          '  File "c.py", line 3, in get_config\n    return x(\nSyntaxError: unexpected EOF.\n')
  assert cli.one_paragraph(text) == "flag --config=c.py: Error whilst parsing config file: SyntaxError: unexpected EOF"
  assert cli.one_paragraph("first\\nsecond  line. ") == "first second line"


def test_fail_prints_one_error_line_and_exits(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.fail("The --out folder is a file.", log=False)
  assert exit_info.value.code == 1
  assert capsys.readouterr().err == "error: The --out folder is a file.\n"
  with pytest.raises(SystemExit) as exit_info:
    cli.fail("Interrupted.", code=130, log=False)
  assert exit_info.value.code == 130


def test_run_command_reports_user_errors_and_keeps_the_traceback_of_bugs(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.run_command(lambda: raise_(cli.UserError("Two\nlines.")))
  assert exit_info.value.code == 1 and capsys.readouterr().err == "error: Two lines.\n"
  with pytest.raises(SystemExit) as exit_info:    # a command's own list of user errors
    cli.run_command(lambda: raise_(FileNotFoundError("No file x.png")), (FileNotFoundError,))
  assert exit_info.value.code == 1 and capsys.readouterr().err == "error: No file x.png\n"
  with pytest.raises(SystemExit) as exit_info:
    cli.run_command(lambda: raise_(KeyboardInterrupt()))
  assert exit_info.value.code == 130 and capsys.readouterr().err == "error: Interrupted.\n"
  with pytest.raises(RuntimeError, match="a bug"):
    cli.run_command(lambda: raise_(RuntimeError("a bug")))
  assert cli.run_command(lambda: None) is None


def _define_flags(flag_values: flags.FlagValues) -> None:
  flags.DEFINE_integer("num", 1, "How many.", flag_values=flag_values)
  flags.DEFINE_string("out_dir", None, "Where.", flag_values=flag_values)
  cli.alias_dashes(["out_dir"], flag_values)


def _main(argv, flag_values: flags.FlagValues) -> None:
  def run():
    cli.check_no_arguments(argv[1:])
    if flag_values.num < 1:
      raise cli.UserError(f"--num must be >= 1, got {flag_values.num}.")
    print(f"{flag_values.num} to {flag_values.out_dir}")

  cli.run_command(run)


@pytest.mark.parametrize("argv, code, out, err", [
    (["--num=3", "--out-dir", "a b"], 0, "3 to a b\n", ""),
    (["--out_dir=x"], 0, "1 to x\n", ""),
    (["--num=three"], 1, "", "error: flag --num=three: invalid literal for int() with base 10: 'three'. See --help "
                             "for the flags.\n"),
    (["--nmu=2"], 1, "", "error: Unknown command line flag 'nmu'. Did you mean: num ? See --help for the flags.\n"),
    (["--num=0"], 1, "", "error: --num must be >= 1, got 0.\n"),
    (["--out-dir", "a", "b"], 1, "", "error: Unexpected arguments 'b' (a flag value with spaces needs quotes). "
                                     "See --help.\n"),
])
def test_call_runs_a_command_as_its_command_line(argv, code, out, err, capsys):
  assert cli.call(_define_flags, _main, argv) == code
  assert capsys.readouterr() == (out, err)
  assert "num" not in flags.FLAGS     # the flags of `call` are its own


def test_image_files_are_what_the_data_reader_and_the_commands_read(tmp_path):
  assert data.IMAGE_EXTENSIONS is cli.IMAGE_EXTENSIONS
  photo = np.full((8, 8, 3), 200, np.uint8)
  for name in ("shoe/b.png", "shoe/a.JPG", "shoe/c.webp", "bag/d.bmp"):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    Image.fromarray(photo).save(tmp_path / name)
  (tmp_path / "shoe" / "notes.txt").write_text("not an image")
  (tmp_path / "shoe" / "e.gif").write_bytes(b"GIF89a")
  (tmp_path / "shoe" / "old.png").mkdir()          # a folder, whatever its name
  assert [p.name for p in cli.image_files(tmp_path / "shoe")] == ["a.JPG", "b.png", "c.webp"]
  config = default.get_config().data
  config.update(source="image_folder", dir=str(tmp_path), image_size=8, channels=3, num_classes=2)
  dataset = data.load_dataset(config)
  assert dataset.class_names == ("bag", "shoe") and dataset.labels.tolist() == [0, 1, 1, 1]


def test_image_outputs_pair_inputs_with_pngs(tmp_path):
  (tmp_path / "in").mkdir()
  for name in ("a.jpg", "b.PNG", "notes.txt"):
    (tmp_path / "in" / name).write_bytes(b"")
  assert cli.image_outputs(tmp_path / "in", tmp_path / "out", "--image") == [
      (tmp_path / "in" / "a.jpg", tmp_path / "out" / "a.png"), (tmp_path / "in" / "b.PNG", tmp_path / "out" / "b.png")]
  assert cli.image_outputs(tmp_path / "in" / "a.jpg", tmp_path / "x.png", "--image") == [
      (tmp_path / "in" / "a.jpg", tmp_path / "x.png")]
  assert cli.image_outputs(tmp_path / "in" / "a.jpg", tmp_path / "in", "--image") == [
      (tmp_path / "in" / "a.jpg", tmp_path / "in" / "a.png")]
  (tmp_path / "in" / "a.webp").write_bytes(b"")
  for source, out, message in [
      ("in", "in/a.jpg", "--content is a folder, so --out must be a folder"),
      ("in", "out", "would be written to the same output a.png; rename them"),
      ("in/none.jpg", "x.png", "--content: Image file not found: "),
      ("in/a.jpg", "x.gif", "--out must end in .png"),
      ("out", "x", "--content: Image file not found")]:
    with pytest.raises(cli.UserError, match=message):
      cli.image_outputs(tmp_path / source, tmp_path / out, "--content")
  (tmp_path / "empty").mkdir()
  with pytest.raises(cli.UserError, match=r"No images \(.jpg, .jpeg, .png, .bmp, .webp\) in the --image folder"):
    cli.image_outputs(tmp_path / "empty", tmp_path / "out", "--image")
