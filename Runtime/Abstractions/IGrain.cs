namespace OrleansMeta.Runtime;

/// <summary>Marker for grain interfaces. Every method must return <see cref="Task"/>, <see cref="Task{T}"/>,
/// <see cref="ValueTask"/> or <see cref="ValueTask{T}"/>; arguments and results must be JSON-serialisable because a call
/// may cross silos.</summary>
public interface IGrain;

/// <summary>Marker for grains addressed by a string key.</summary>
public interface IGrainWithStringKey : IGrain;

/// <summary>Hands out references to grains. A reference is cheap, never activates anything by itself, and stays valid
/// forever: the runtime activates the grain on the first call.</summary>
public interface IGrainFactory
{
    /// <summary>Gets a reference to the grain of interface <typeparamref name="TGrainInterface"/> with the given key.</summary>
    TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey;
}
