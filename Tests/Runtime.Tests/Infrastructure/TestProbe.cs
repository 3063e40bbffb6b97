using System.Collections.Concurrent;

namespace OrleansMeta.Runtime.Tests.Infrastructure;

/// <summary>What test grains saw, shared between a test and its grains through DI.</summary>
public sealed class TestProbe
{
    private readonly ConcurrentQueue<string> _events = new();

    public void Record(string e) => _events.Enqueue(e);

    public IReadOnlyList<string> Events => [.. _events];

    public int Count(string e) => _events.Count(x => x == e);

    /// <summary>Gates test grains wait on, by name.</summary>
    public ConcurrentDictionary<string, TaskCompletionSource> Gates { get; } = new();

    public TaskCompletionSource Gate(string name) => Gates.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}
