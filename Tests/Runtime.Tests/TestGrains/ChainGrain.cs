namespace OrleansMeta.Runtime.Tests.Infrastructure;

public interface IChainGrain : IGrainWithStringKey
{
    /// <summary>Calls the next grain in <paramref name="path"/> (then it calls the next, ...); returns the visited keys.</summary>
    Task<string> CallAlongAsync(string[] path);

    Task<string> NameAsync();
}

internal sealed class ChainGrain : Grain, IChainGrain
{
    public async Task<string> CallAlongAsync(string[] path)
    {
        if (path.Length == 0)
        {
            return Key;
        }

        var rest = await GrainFactory.GetGrain<IChainGrain>(path[0]).CallAlongAsync(path[1..]);
        return $"{Key}>{rest}";
    }

    public Task<string> NameAsync() => Task.FromResult(Key);
}
