defmodule CloudStreams.PathDependencyTest do
  # `mix compile` builds and loads the NIF with no extra step in a project that depends on us.
  use ExUnit.Case, async: true

  @moduletag timeout: 300_000

  @tag :tmp_dir
  test "an app with cloud_streams as a path dependency compiles and runs it", %{tmp_dir: dir} do
    File.cp_r!(Path.expand("fixtures/path_dep_app", __DIR__), dir)

    env = [
      {"CLOUD_STREAMS_PATH", File.cwd!()},
      {"MIX_ENV", "dev"},
      {"MIX_BUILD_PATH", nil},
      {"MIX_EXS", nil}
    ]

    {output, status} =
      System.cmd("mix", ["run", "-e", "IO.inspect(PathDepApp.run(), label: :result)"],
        cd: dir,
        env: env,
        stderr_to_stdout: true
      )

    assert status == 0, output
    assert output =~ "result: [5, 5, 5]"

    assert File.exists?(
             Path.join(dir, "_build/dev/lib/cloud_streams/priv/native/libcloud_streams_nif.so")
           )
  end
end
