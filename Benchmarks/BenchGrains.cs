using OrleansMeta.Runtime;

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
}

internal sealed class WriterGrain([PersistentState("counter")] IPersistentState<CounterState> state) : Grain, IWriterGrain
{
    public async Task<long> IncrementAsync()
    {
        state.State.Value++;
        await state.WriteStateAsync();
        return state.Version;
    }
}
