// A STUB of the Azure API Management policy-expression object model, for tests only.
//
// It declares exactly the members of APIM's implicit `context` variable (and of the
// `IResponse` that `send-request` stores in a variable) that the Astrocyte policy
// fragments use, with the names, types and semantics the APIM policy-expression reference
// documents: header lookups are case-insensitive and `GetValueOrDefault` joins repeated
// values with commas; `context.Variables.GetValueOrDefault<T>` casts and throws when the
// stored value has another type; `Body.As<T>()` consumes the body unless
// `preserveContent: true`; `AsJwt()` decodes a token without validating it.
//
// The expressions are compiled against this file with Mono's C# compiler in C# 7 mode
// (the language level APIM documents), so an expression that uses a member APIM does not
// have, or C# beyond 7, fails the test run instead of failing at the gateway.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Newtonsoft.Json.Linq;

namespace ApimStub
{
    public interface IProxyRequestContext
    {
        IRequest Request { get; }
        IResponse Response { get; }
        IReadOnlyDictionary<string, object> Variables { get; }
        IOperation Operation { get; }
        Guid RequestId { get; }
        void Trace(string message);
    }

    public interface IRequest
    {
        IMessageBody Body { get; }
        IReadOnlyDictionary<string, string[]> Headers { get; }
        string Method { get; }
        IUrl Url { get; }
        IUrl OriginalUrl { get; }
    }

    public interface IResponse
    {
        IMessageBody Body { get; }
        IReadOnlyDictionary<string, string[]> Headers { get; }
        int StatusCode { get; }
        string StatusReason { get; }
    }

    public interface IMessageBody
    {
        T As<T>(bool preserveContent = false);
    }

    public interface IUrl
    {
        string Scheme { get; }
        string Host { get; }
        int Port { get; }
        string Path { get; }
        string QueryString { get; }
    }

    public interface IOperation
    {
        string Id { get; }
        string Method { get; }
        string Name { get; }
        string UrlTemplate { get; }
    }

    public class Jwt
    {
        public IReadOnlyDictionary<string, string[]> Claims { get; internal set; }
        public string Subject { get; internal set; }
    }

    public static class ApimExtensions
    {
        // APIM: "Returns comma-separated request header values or defaultValue".
        public static string GetValueOrDefault(
            this IReadOnlyDictionary<string, string[]> headers, string name, string defaultValue)
        {
            string[] values;
            if (headers == null || !headers.TryGetValue(name, out values) || values == null)
            {
                return defaultValue;
            }
            return string.Join(",", values);
        }

        // APIM: "Returns variable value cast to type T or defaultValue if the variable is not
        // found. This method throws an exception if the specified type does not match".
        public static T GetValueOrDefault<T>(
            this IReadOnlyDictionary<string, object> variables, string name, T defaultValue)
        {
            object value;
            if (variables == null || !variables.TryGetValue(name, out value))
            {
                return defaultValue;
            }
            return (T)value;
        }

        // APIM: AsJwt returns null unless the input is a well-formed JWT; no validation.
        public static Jwt AsJwt(this string input)
        {
            if (string.IsNullOrEmpty(input))
            {
                return null;
            }
            var parts = input.Split('.');
            if (parts.Length != 3)
            {
                return null;
            }
            try
            {
                var payload = parts[1].Replace('-', '+').Replace('_', '/');
                payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
                var json = JObject.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(payload)));
                var claims = new Dictionary<string, string[]>(StringComparer.Ordinal);
                foreach (var property in json.Properties())
                {
                    var array = property.Value as JArray;
                    claims[property.Name] = array != null
                        ? array.Select(v => v.Type == JTokenType.String ? (string)v : v.ToString()).ToArray()
                        : new[] {
                            property.Value.Type == JTokenType.String
                                ? (string)property.Value
                                : property.Value.ToString(Newtonsoft.Json.Formatting.None)
                        };
                }
                string[] sub;
                return new Jwt {
                    Claims = claims,
                    Subject = claims.TryGetValue("sub", out sub) ? sub[0] : null
                };
            }
            catch (Exception)
            {
                return null;
            }
        }
    }
}
