using OrleansMeta.Contracts;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Tells a client where a grain's calls cost least. Any silo serves every call, forwarding it to the silo that owns the
/// grain; an answer that was forwarded names that silo's public URL, so the client's next call for the same grain goes
/// there without the hop (DESIGN: talk to the owner). A client that ignores the header loses nothing but the hop.
/// </summary>
internal static class OwnerRouting
{
    /// <summary>After the endpoint's call succeeded, names the owner of the <typeparamref name="TGrain"/> whose key
    /// <paramref name="key"/> reads from the request (null: none), when this silo forwarded the call to it.</summary>
    public static RouteHandlerBuilder NamesOwner<TGrain>(
        this RouteHandlerBuilder builder, Func<EndpointFilterInvocationContext, string?> key, string header = RoutingHeaders.Owner)
        where TGrain : IGrainWithStringKey
        => builder.AddEndpointFilter(async (context, next) =>
        {
            var result = await next(context);
            if (key(context) is { } grainKey)
            {
                NameOwnerIfForwarded<TGrain>(context.HttpContext, grainKey, header);
            }

            return result;
        });

    /// <summary>After a call to <typeparamref name="TGrain"/> with <paramref name="key"/> succeeded: when this silo does
    /// not own the grain in its current view, names the owner's URL in <paramref name="header"/>.</summary>
    public static void NameOwnerIfForwarded<TGrain>(HttpContext http, string key, string header = RoutingHeaders.Owner)
        where TGrain : IGrainWithStringKey
    {
        if (http.RequestServices.GetRequiredService<GrainLocator>().Locate<TGrain>(key) is { IsLocal: false, Owner.ClientUrl: { } url })
        {
            http.Response.Headers[header] = url;
        }
    }
}
