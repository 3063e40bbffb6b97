using System.Collections.Concurrent;
using OrleansMeta.Runtime.Calls;

namespace OrleansMeta.Runtime.Activation;

/// <summary>
/// The activations of this silo, one per grain id. Delivers each request to the grain's activation, creating it on
/// first use; a request that reaches an activation which is going away is handed to its successor.
/// </summary>
internal sealed class ActivationCatalog(GrainTypeRegistry registry) : IGrainCallDispatcher
{
    private readonly ConcurrentDictionary<GrainId, GrainActivation> _activations = new();
    private GrainRuntime? _runtime;

    /// <summary>Set once when the runtime is built (the runtime and the catalog refer to each other).</summary>
    internal void Attach(GrainRuntime runtime) => _runtime = runtime;

    public int Count => _activations.Count;

    public IEnumerable<GrainActivation> Activations => _activations.Values;

    public void Dispatch(GrainRequest request) => Dispatch(request, checksOwner: true);

    /// <summary>
    /// Delivers the request to this silo's activation of its grain, creating it on first use. With
    /// <paramref name="checksOwner"/> false, an activation created for it starts even where this silo does not own the
    /// grain: only for tests that force a second activation to show what storage does about one.
    /// </summary>
    internal void Dispatch(GrainRequest request, bool checksOwner)
    {
        var runtime = _runtime ?? throw new InvalidOperationException("The grain runtime is not started.");
        if (!registry.TryGetGrainClass(request.Target.Type, out _, out var grainClass))
        {
            request.SetException(new GrainRuntimeException(
                $"No grain class is registered for grain type '{request.Target.Type}'. Register one with AddGrain<TInterface, TGrain>()."));
            return;
        }

        try
        {
            while (true)
            {
                if (runtime.IsStopping)
                {
                    request.SetException(new SiloUnavailableException("This silo is shutting down and takes no new grain calls; retry on another silo."));
                    return;
                }

                if (!_activations.TryGetValue(request.Target, out var activation))
                {
                    var created = new GrainActivation(request.Target, grainClass, runtime) { ChecksOwner = checksOwner };
                    activation = _activations.GetOrAdd(request.Target, created);
                    if (ReferenceEquals(activation, created))
                    {
                        created.Start();
                    }
                }

                if (activation.TryEnqueue(request))
                {
                    return;
                }

                // That activation is gone; drop it if it is still listed and try again with a fresh one.
                Remove(activation);
            }
        }
        catch (Exception exception)
        {
            request.SetException(exception);
        }
    }

    /// <summary>
    /// Completes once this silo holds no activation of <paramref name="grainId"/>: asks the one it holds, if any, to
    /// deactivate, and waits for its last turn and write. Only meaningful on a silo that activates nothing new (a
    /// leaving one), which answers a grain's new owner with it.
    /// </summary>
    public async Task WhenReleasedAsync(GrainId grainId, CancellationToken cancellationToken)
    {
        while (_activations.TryGetValue(grainId, out var activation))
        {
            activation.RequestDeactivation(DeactivationReason.ShuttingDown);
            await activation.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (_activations.TryGetValue(grainId, out var listed) && ReferenceEquals(listed, activation))
            {
                // Listed but not started yet (its completion is the placeholder): give it a moment to run and retire.
                await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public void Remove(GrainActivation activation)
        => _activations.TryRemove(KeyValuePair.Create(activation.GrainId, activation));
}

/// <summary>This silo is stopping (or has been declared dead) and cannot serve the call; another silo can.</summary>
public sealed class SiloUnavailableException(string message) : GrainRuntimeException(message)
{
    public override bool IsRetryable => true;
}
