namespace OrleansMeta.Runtime.Tests.Infrastructure;

public interface ICounterGrain : IGrainWithStringKey
{
    /// <summary>Read-modify-write with awaits in between: loses updates unless turns never overlap.</summary>
    Task<int> IncrementAsync();

    Task<int> GetViolationsAsync();

    /// <summary>Waits on a probe gate; records how many read-only turns are inside at once.</summary>
    [ReadOnly]
    Task<int> PeekAsync(string gate);

    /// <summary>An exclusive call that records whether any read-only turn was inside while it ran.</summary>
    Task<int> ExclusiveAsync();

    Task<int> GetMaxReadersAsync();
}

internal sealed class CounterGrain(TestProbe probe) : Grain, ICounterGrain
{
    private int _value;
    private int _inside;
    private int _violations;
    private int _readers;
    private int _maxReaders;

    public async Task<int> IncrementAsync()
    {
        if (Interlocked.Increment(ref _inside) != 1)
        {
            Interlocked.Increment(ref _violations);
        }

        var read = _value;
        await Task.Yield();
        await Task.Delay(0);
        await Task.Yield();
        _value = read + 1;
        Interlocked.Decrement(ref _inside);
        return _value;
    }

    public Task<int> GetViolationsAsync() => Task.FromResult(_violations);

    public async Task<int> PeekAsync(string gate)
    {
        _readers++;
        _maxReaders = Math.Max(_maxReaders, _readers);
        probe.Record($"peek-in:{_readers}");
        await probe.Gate(gate).Task;
        _readers--;
        return _value;
    }

    public Task<int> ExclusiveAsync()
    {
        probe.Record($"exclusive:{_readers}");
        return Task.FromResult(_value);
    }

    public Task<int> GetMaxReadersAsync() => Task.FromResult(_maxReaders);
}
