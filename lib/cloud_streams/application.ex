defmodule CloudStreams.Application do
  @moduledoc false
  # Supervises the processes the library starts on a caller's behalf: the scanners of
  # `Dynamo.Table.Stream.scan_to_process/3` (`CloudStreams.TaskSupervisor`).

  use Application

  @impl true
  def start(_type, _args) do
    children = [{Task.Supervisor, name: CloudStreams.TaskSupervisor}]
    Supervisor.start_link(children, strategy: :one_for_one, name: CloudStreams.Supervisor)
  end
end
