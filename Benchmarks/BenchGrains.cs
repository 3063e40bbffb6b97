using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;

namespace OrleansMeta.Benchmarks;

public interface IEchoGrain : IGrainWithStringKey
{
    Task<int> EchoAsync(int value);
}

internal sealed class EchoGrain : Grain, IEchoGrain
{
    public Task<int> EchoAsync(int value) => Task.FromResult(value);
}

public sealed class CounterState
{
    public long Value { get; set; }
}

public interface IWriterGrain : IGrainWithStringKey
{
    Task<long> IncrementAsync();

    /// <summary>The same write, appending one metadata log record in the same transaction (as every metadata change does).</summary>
    Task<long> IncrementLoggedAsync();
}

internal sealed class WriterGrain([PersistentState("counter")] IPersistentState<CounterState> state) : Grain, IWriterGrain
{
    public async Task<long> IncrementAsync()
    {
        state.State.Value++;
        await state.WriteStateAsync();
        return state.Version;
    }

    public async Task<long> IncrementLoggedAsync()
    {
        state.State.Value++;
        return await state.WriteStateAsync([new LogRecord("bench", Key, Payload)]) ?? 0;
    }

    private static readonly byte[] Payload = new byte[128];
}
